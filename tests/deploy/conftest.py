from tests.e2e.conftest import redis_url  # noqa: F401 - shared fixture
