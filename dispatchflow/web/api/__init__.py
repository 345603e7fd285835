"""The REST API under ``/api/v1``, its OpenAPI description and inbound channel endpoints.

What belongs here: the records endpoints and the blueprint (``records``), flow
actions and dispatch (``flows``), escalations (``escalations``), tokens
(``tokens``), list and header parameters (``params``), the OpenAPI document
and Swagger UI (``openapi*``, ``docs``) and the signed webhook and e-mail
endpoints of inbound channels (``channels``). It may import ``platform`` and
the shared modules of ``web``.
"""
