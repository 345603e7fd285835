"""REST API ``/api/v1``, escalation ladders: acknowledging one stops it.

- ``POST /<entity>/<id>/escalations/<ladder>/acknowledge``: stop the record's
  running escalation ladder (docs/bundle.md, "Escalation ladders"); 204, or
  403 (the caller may not update the entity), 404 (no such record or ladder,
  or not visible), 409 (the ladder is not running). Acknowledging twice is
  harmless.

Routes live on the same blueprint as :mod:`.api` (token authentication,
problem+json errors, default-deny authorization).
"""

from __future__ import annotations

from flask import Response

from ...platform.runtime.escalation import acknowledge
from ..auth.views import runtime
from .records import _actor, bp


@bp.post("/<entity>/<int:record_id>/escalations/<ladder>/acknowledge")
def acknowledge_escalation(entity: str, record_id: int, ladder: str) -> Response:
    acknowledge(runtime(), _actor(), entity, record_id, ladder)
    return Response(status=204)
