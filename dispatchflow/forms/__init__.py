"""Entity + form layout -> JSON Schema (2020-12) -> HTML; submission validation.

The schema side is pure (no Flask, SQLAlchemy, Redis or RQ); only HTML
rendering uses Jinja2. (Form definitions are already validated and type-checked
by ``dsl``; generation arrives with the records/forms issue.)
"""
