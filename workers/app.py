"""The one Celery app. Constructing it connects to nothing; configuration is read from
the environment (workers.celeryconfig) when a worker or client first uses it."""

from __future__ import annotations

from celery import Celery

__all__ = ["app"]

app = Celery("messplus", include=["workers.tasks"])
app.config_from_object("workers.celeryconfig")
