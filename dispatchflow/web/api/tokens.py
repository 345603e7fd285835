"""REST API ``/api/v1``, the caller's own token.

- ``DELETE /tokens/current``: revoke the token this request is made with (a
  script or device signing out); 204. From the next request on that token is
  refused with 401; the user's other tokens keep working. Administrators revoke
  any token with ``dispatchflow token revoke ID``.

Routes live on the same blueprint as :mod:`.api` (token authentication,
problem+json errors).
"""

from __future__ import annotations

from flask import Response

from ...platform.records.users import revoke_token_secret
from ..auth.views import bearer_token, runtime
from .records import bp


@bp.delete("/tokens/current")
def revoke_current_token() -> Response:
    # The request was authenticated with this token a moment ago; a concurrent
    # revocation of the same token makes this a no-op, which is still "revoked".
    revoke_token_secret(runtime().engine, bearer_token() or "")
    return Response(status=204)
