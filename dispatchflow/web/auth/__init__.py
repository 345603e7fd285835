"""Signing in: sessions, bearer tokens and safe redirects.

What belongs here: the login and logout pages, the session and token actor of
a request and the per-request runtime (``views``), and the check that keeps a
login redirect on this site (``redirects``). Templates are under
``templates/auth/``. It may import ``platform`` and the shared modules of
``web``.
"""
