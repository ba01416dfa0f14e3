"""The one Celery app. Constructing it connects to nothing; configuration is read from
the environment (workers.celeryconfig) when a worker or client first uses it."""

from __future__ import annotations

import kombu.pools
from celery import Celery

__all__ = ["app", "use_broker"]

# workers.health registers the remote-control command every worker answers its health with.
app = Celery("messplus", include=["workers.tasks", "workers.health"])
app.config_from_object("workers.celeryconfig")


def use_broker(url: str) -> None:
    """Publish to `url` from now on, dropping every pooled connection to the old broker.

    For processes that switch deployments after the app was configured (the test suite,
    benchmarks). Celery keeps its producer pools on private attributes; they are rebuilt
    on next use.
    """
    app.conf.broker_url = url
    kombu.pools.reset()
    app._pool = None
    app.amqp._producer_pool = None
