"""Regression tests: one module per reproduced bug, named after what went wrong.

Each test reproduces a bug that reached a user (or nearly did) exactly as it was
reported -- the bundle, record or expression that triggered it -- and asserts the
fixed behaviour, so the bug cannot come back unnoticed. Tests for bugs found
while writing the mirrored suites live next to the code they cover and say
"Regression:" in a comment.
"""
