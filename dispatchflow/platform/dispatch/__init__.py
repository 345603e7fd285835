"""Dispatch: who gets the work, and why.

What belongs here: dispatch rounds and offers (``rounds``: a round's decision,
offers and their timers, re-matching after a rejection or an expired offer),
batched rounds (``batches``), assignment by hand (``manual``), who may take an
action given their offers (``access``), technicians' running statistics
(``profiles``) and explanations of a record's dispatch (``explain``). It may
import ``runtime`` and the layers below it.
"""
