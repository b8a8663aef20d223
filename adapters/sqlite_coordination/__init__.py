"""What the processes sharing one SQLite file coordinate through it: the rate window, job leases.

Each keeps its own connection and tables (``CREATE TABLE IF NOT EXISTS``, so processes opening
the file at once agree), and serialises its claims with ``BEGIN IMMEDIATE``.
"""
