"""Persistence: SQLAlchemy 2.0 typed models, sessions and the queries workers and clients need."""
