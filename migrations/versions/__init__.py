"""Alembic revision files, one per schema change; Alembic loads them by path."""
