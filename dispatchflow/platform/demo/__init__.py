"""The demo: seed data, demo users and the living city of ``serve --demo``.

What belongs here: reading the bundle's demo files (``data``), seeding users
and records (``seed``), the simulated technicians and customers (``people``)
and the loop that runs them (``city``). It sits on top of the platform: it may
import every other subpackage, the composition root included.
"""
