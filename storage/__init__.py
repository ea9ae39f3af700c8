"""Persistence: SQLModel tables, the engine/session factory and Alembic migrations.

Nothing here knows about chat platforms or about the rules of the domain; the
``announcements`` package decides, this package stores.
"""
