"""The model workers' retry waits: exponential, capped, jittered, and a window that the
README's promise (a Triton outage of up to a minute costs latency, not requests) rests on."""

from __future__ import annotations

import pytest

from workers.backoff import retry_delay_s
from workers.settings import SettingsError, load_settings


def test_waits_double_up_to_the_cap_with_jitter_between_half_and_all() -> None:
    ceilings = [retry_delay_s(k, 1.0, 30.0, draw=1 - 1e-12) for k in range(8)]
    assert ceilings == pytest.approx([1, 2, 4, 8, 16, 30, 30, 30])
    assert [retry_delay_s(k, 1.0, 30.0, draw=0.0) for k in range(8)] == pytest.approx(
        [c / 2 for c in ceilings]
    )
    assert retry_delay_s(10_000, 1.0, 30.0, draw=0.5) == pytest.approx(22.5)


def test_default_retries_span_one_to_two_minutes() -> None:
    settings = load_settings({})
    waits = [
        (
            retry_delay_s(k, settings.infer_backoff_s, settings.infer_backoff_max_s, 0.0),
            retry_delay_s(k, settings.infer_backoff_s, settings.infer_backoff_max_s, 1 - 1e-12),
        )
        for k in range(settings.infer_retries)
    ]
    assert sum(low for low, _ in waits) == pytest.approx(60.5)
    assert sum(high for _, high in waits) == pytest.approx(121)


@pytest.mark.parametrize(
    ("retries", "draw"), [(-1, 0.5), (0, 1.0), (0, -0.1)], ids=["negative", "draw1", "draw<0"]
)
def test_bad_arguments_are_refused(retries: int, draw: float) -> None:
    with pytest.raises(ValueError):
        retry_delay_s(retries, 1.0, 30.0, draw)


@pytest.mark.parametrize(
    "environment",
    [
        {"MESSPLUS_INFER_BACKOFF_S": "0"},
        {"MESSPLUS_INFER_BACKOFF_S": "40"},
        {"MESSPLUS_INFER_BACKOFF_MAX_S": "3600"},
    ],
)
def test_backoff_settings_are_checked(environment: dict[str, str]) -> None:
    with pytest.raises(SettingsError, match="INFER_BACKOFF"):
        load_settings(environment)
