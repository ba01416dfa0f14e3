"""The thin shell around router/ and db/: the Celery app, its tasks, the Triton adapter and
the command line client."""
