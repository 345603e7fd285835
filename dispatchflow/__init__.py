"""dispatchflow: a low-code rules platform for field-service work orders and dispatch.

Layers (dependencies point one way): ``web``, ``cli`` -> ``platform`` -> ``flows``,
``rules``, ``forms`` -> ``dsl``. Beside them, used by every layer: ``errors`` (the
one error root) and ``lru`` (the bounded cache of what is built per app version).
See ``docs/`` and the design notes.
"""

__version__ = "0.1.0"
