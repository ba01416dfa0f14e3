"""Celery's configuration, read from workers.settings when the app is first configured.

Celery imports this module lazily (app.config_from_object with a module name), i.e. when
a worker or a client first uses the app, never when workers.app is imported.

Delivery rules: JSON only (never pickle); tasks are acknowledged after they finish and
re-queued if their worker dies (every task is idempotent: conditional updates and
insert-on-conflict keyed by request and model); one message prefetched at a time, since
chunks are slow; hard time limits so a stuck call cannot hold a message forever.

Beat sends one retraining request a night (MESSPLUS_RETRAIN_HOUR:MESSPLUS_RETRAIN_MINUTE,
UTC). It expires unconsumed after 12 hours, so trainers that were down for days do not
work through a backlog of identical nights when they come back.
"""

from __future__ import annotations

from celery.schedules import crontab

from workers import queues
from workers.messages import TrainRequest
from workers.settings import BROKER_VISIBILITY_TIMEOUT_S, load_settings

_settings = load_settings()

broker_url = _settings.broker_url
broker_connection_retry_on_startup = True
task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]
event_serializer = "json"
task_ignore_result = True
task_acks_late = True
task_reject_on_worker_lost = True
worker_prefetch_multiplier = 1
task_time_limit = _settings.task_time_limit_s
task_soft_time_limit = _settings.task_time_limit_s * 0.9
task_default_queue = queues.ROUTE
task_routes = {
    "messplus.route": {"queue": queues.ROUTE},
    "messplus.feedback": {"queue": queues.FEEDBACK},
    "messplus.train": {"queue": queues.TRAIN},
    "messplus.reconcile": {"queue": queues.ROUTE},
    # messplus.infer goes to model.<name>, chosen per message by the router.
}
# Retraining streams every rating twice: it gets a limit of its own.
task_annotations = {
    "messplus.train": {
        "time_limit": _settings.retrain_time_limit_s,
        "soft_time_limit": _settings.retrain_time_limit_s * 0.9,
    }
}
worker_hijack_root_logger = False
# Messages Celery would discard with only a log line (not JSON, pickle, an unknown task)
# are kept as dead letters instead.
worker_consumer = "workers.dead_letters:DeadLetteringConsumer"
broker_transport_options = {"visibility_timeout": BROKER_VISIBILITY_TIMEOUT_S}
timezone = "UTC"
enable_utc = True
beat_schedule = {
    "retrain-nightly": {
        "task": "messplus.train",
        "schedule": crontab(hour=_settings.retrain_hour, minute=_settings.retrain_minute),
        "args": [TrainRequest().to_json()],
        "options": {"queue": queues.TRAIN, "expires": 12 * 3600},
    },
    # Requests whose messages were lost are published again (workers.reconciler).
    "reconcile": {
        "task": "messplus.reconcile",
        "schedule": _settings.reconcile_every_s,
        "options": {"queue": queues.ROUTE, "expires": _settings.reconcile_every_s},
    },
}
