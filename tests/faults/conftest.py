from tests.e2e.conftest import postgres_url, redis_url  # noqa: F401 - shared fixtures
