"""dispatchflow: a low-code rules platform for field-service work orders and dispatch.

Layers (dependencies point one way): ``web``, ``cli`` -> ``platform`` -> ``flows``,
``rules``, ``forms`` -> ``dsl``. See ``docs/`` and the design notes.
"""

__version__ = "0.1.0"
