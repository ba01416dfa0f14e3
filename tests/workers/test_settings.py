"""MESSPLUS_* settings: the database and broker URLs are checked when the settings are
read, so every command and worker refuses a broken one in one line before using it."""

from __future__ import annotations

import pytest

from workers.settings import SettingsError, load_settings


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("mysql://root@127.0.0.1/x", "unsupported database mysql://root@127.0.0.1/x"),
        ("notaurl", "MESSPLUS_DATABASE_URL: not a database URL"),
    ],
)
def test_a_database_url_messplus_cannot_use_is_refused(url: str, says: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"MESSPLUS_DATABASE_URL": url})
    assert says in str(caught.value)
    assert "PostgreSQL" in str(caught.value) and "SQLite" in str(caught.value)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("foo://bar", "unknown broker transport 'foo'"),
        ("notaurl", "not a broker URL"),
        ("redis:/x", "not a broker URL"),
        ("redis://:secret@h:99999/0", "Port out of range"),
        ("sqs://", "broker transport 'sqs' needs a library that is not installed"),
    ],
)
def test_a_broker_url_kombu_cannot_use_is_refused(url: str, says: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"MESSPLUS_BROKER_URL": url})
    assert f"MESSPLUS_BROKER_URL: {says}" in str(caught.value)
    assert "secret" not in str(caught.value)


@pytest.mark.parametrize(
    "url", ["redis://127.0.0.1:6379/0", "rediss://:pw@h:6380/1", "memory://", "amqp://h//"]
)
def test_broker_urls_of_installed_transports_pass(url: str) -> None:
    assert load_settings({"MESSPLUS_BROKER_URL": url}).broker_url == url


def test_the_database_url_comes_from_the_environment_given() -> None:
    url = "postgresql://postgres@127.0.0.1/elsewhere"
    assert load_settings({"MESSPLUS_DATABASE_URL": url}).database_url == url
