"""Decisions, pure: rule sets, decision tables and dispatch policies.

Everything here is a function of (compiled app, facts, now) that returns
effects or decisions as data. No I/O: no Flask, SQLAlchemy, Redis or RQ. The
platform applies what these functions return.
"""
