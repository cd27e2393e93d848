"""Security: roles and permissions, passwords, users, sessions, the per-transaction scope and the audit.

Territory is enforced by PostgreSQL (row-level security on ``org_path``, see ``gis/sql/0002_access.sql``);
what a user may *do* inside their territory (reveal a number, export, read a special population) is the
role's permissions, checked here in Python.
"""
