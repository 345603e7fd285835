"""The Flask app (``app``) and one blueprint package per audience.

``api`` (REST, OpenAPI, inbound channels), ``portal`` (forms, tracking, records
and their actions), ``auth`` (sign-in, tokens, redirects), ``live`` (``GET /live``); console, tech,
designer and reports join them as siblings. Shared by all: ``display`` (values
formatted for people), ``errors`` (the site's error pages and problem+json),
``problems`` (problem+json bodies), ``i18n`` (page texts), ``tracking``
(customers' signed tracking links, for the page and its live stream). Templates live under
``templates/<area>/``; the committed front-end build under ``static/dist/``.
"""
