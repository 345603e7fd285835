"""The bundle language, pure: loading, schemas, grammar, parser, type checker, compiler.

What belongs here: reading bundle files, YAML with positions, JSON Schema
validation, the Lark grammar and the AST, name resolution and type checking,
decision-table analysis, generating and compiling Python for expressions, and
diagnostics. It reads files and never touches a database or the network; it
imports no Flask, SQLAlchemy, Redis or RQ.
"""
