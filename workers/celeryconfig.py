"""Celery's configuration, read from workers.settings when the app is first configured.

Celery imports this module lazily (app.config_from_object with a module name), i.e. when
a worker or a client first uses the app, never when workers.app is imported.

Delivery rules: JSON only (never pickle); tasks are acknowledged after they finish and
re-queued if their worker dies (every task is idempotent: conditional updates and
insert-on-conflict keyed by request and model); one message prefetched at a time, since
chunks are slow; hard time limits so a stuck call cannot hold a message forever.
"""

from __future__ import annotations

from workers import queues
from workers.settings import load_settings

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
    # messplus.infer goes to model.<name>, chosen per message by the router.
}
worker_hijack_root_logger = False
broker_transport_options = {"visibility_timeout": 3600}
