"""Entity + form layout -> JSON Schema (2020-12) -> HTML; submission validation.

What belongs here, one concept per module:

``schema``
    entity and form JSON Schemas (create / update / read) and the typed form
    layout (:func:`~.schema.form_layout`); everything built once per app
    version (keyed on ``App.digest``) and cached.
``validation``
    :func:`~.validation.validate_payload`: a JSON payload -> runtime values or
    :class:`~.validation.FieldError` s in Chinese or English; field masks
    (``writable``) and form conditions applied. Never writes, never raises on data.
``conditions``
    ``visible_if`` / ``required_if``: compiled for the server, serialised to a
    small JSON tree for the browser's interpreter (``static/dispatchflow-forms.js``).
``binding``
    which forms create records and which act on an existing one (a flow
    action's form, or ``acts_on: existing``), and ``available_if``.
``submission``
    HTML form posts (strings and files) -> the JSON payload shape; file size and
    type checks; files stored through callbacks the caller passes in.
``render``
    the accessible, mobile-first ``<form>`` (Jinja2 templates in ``templates/``)
    and the static assets it needs (``static/``).
``messages``
    every user-visible text, in zh and en.

The layer is pure apart from Jinja2 in ``render``: no Flask, SQLAlchemy, Redis
or RQ (``tests/test_layering.py`` checks), no storage and no clock of its own —
the platform and web layers pass in ``now``, the stored record and the file
store.
"""
