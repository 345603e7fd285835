"""The composition root: where the platform's layers are put together.

What belongs here: building a runtime with its services (:mod:`.root`:
:class:`Runtime`, the :data:`~.root.SERVICES` the runtime calls into the layers
above it through, the RQ worker's entry point) and the job registry
(:mod:`.jobs`). What may it import: every layer of ``platform`` (it is the top
one, below ``web`` and ``cli``, which build their runtimes here). Nothing in
``platform`` imports it, except for type annotations.
"""

from .root import Runtime

__all__ = ["Runtime"]
