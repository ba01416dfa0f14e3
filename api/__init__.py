"""The tenants' HTTP front door: an OpenAI-compatible Batch, Files and Chat API.

`messplus api serve` runs it on uvicorn (create_app in api.app). It is stateless: keys,
files, batches and answers live in Postgres, rate limits in the broker's Redis, so any
number of processes may serve behind a load balancer. Requests are stored and published
the way `messplus submit` does it (db.jobs.create_job, then workers.publish.publish_route);
nothing in workers/, db/ or router/ imports this package, so workers run without it.
"""
