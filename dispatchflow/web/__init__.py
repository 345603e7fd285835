"""Flask app factory and blueprints: api, designer, portal, console, tech, reports.

The server-rendered pages: ``portal`` (home, create forms, confirmation, tracking),
``record_pages`` (my records, a record, forms bound to it, flow actions), ``pages``
(what they share: who may use a form, what a record offers), ``display`` (values
formatted for people), ``submissions`` (form posts and their uploads), ``errors``
(the site's error pages and problem+json for machines), ``i18n`` (page texts).
"""
