"""db.sla_report and `messplus sla` against a real database, on SQLite and Postgres."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from db.jobs import create_job
from db.models import Feedback, Request, RequestStatus, ZooModel
from db.sla import recompute_sla_from_feedback
from db.sla_report import DEFAULT_WINDOW, SlaReport, sla_report, wilson_interval
from db.tenants import get_tenant_by_name
from tests.cli.conftest import Run, one_error_line

START = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)
# tenant -> (alpha, served answers' ratings, oldest first)
TENANTS: dict[str, tuple[float, list[bool]]] = {
    # 17 of 20 since the start: above alpha, but 20 ratings cannot prove it; 2 of the
    # newest 5.
    "acme": (0.8, [True] * 15 + [False, True, False, True, False]),
    "zeta": (0.6, [True] * 30),
    "slow": (0.7, [True] * 3 + [False] * 7),
    "idle": (0.5, []),
}


def _rate(sessions: sessionmaker[Session], name: str, ratings: list[bool]) -> None:
    """Serve one request per rating and store the rating, a minute apart from START.

    Every request also gets a rating of an answer it was not served (exploration): the
    report must not count it.
    """
    with sessions.begin() as session:
        tenant_id = get_tenant_by_name(session, name).id
        models = session.scalars(select(ZooModel.id).order_by(ZooModel.position)).all()
        served, explored = models[0], models[1]
        prompts = [f"p{i}" for i in range(len(ratings))]
        _, request_ids = create_job(session, tenant_id, prompts, "cli")
        session.execute(
            update(Request)
            .where(Request.id.in_(request_ids))
            .values(status=RequestStatus.DONE.value, served_model_id=served)
        )
        for minute, (request_id, satisfied) in enumerate(zip(request_ids, ratings, strict=True)):
            at = START + dt.timedelta(minutes=minute)
            for model_id, rating in ((served, satisfied), (explored, not satisfied)):
                session.add(
                    Feedback(
                        request_id=request_id,
                        model_id=model_id,
                        tenant_id=tenant_id,
                        satisfied=rating,
                        received_at=at,
                    )
                )


@pytest.fixture
def tenants(run: Callable[..., Run], sessions: sessionmaker[Session]) -> None:
    """The tenants of TENANTS with their ratings stored, on a registered zoo."""
    assert run("zoo", "register", "--no-check").code == 0
    for name, (alpha, ratings) in TENANTS.items():
        assert run("tenants", "add", name, "--alpha", str(alpha)).code == 0
        if ratings:
            _rate(sessions, name, ratings)


def _report(
    sessions: sessionmaker[Session],
    name: str,
    window: int = DEFAULT_WINDOW,
    since: dt.datetime | None = None,
) -> SlaReport:
    with sessions.begin() as session:
        tenant = get_tenant_by_name(session, name)
        return sla_report(session, tenant, window=window, since=since)


def test_wilson_interval_matches_known_values_and_stays_in_the_unit_interval() -> None:
    assert wilson_interval(50, 100) == pytest.approx((0.4038, 0.5962), abs=1e-4)
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)
    assert wilson_interval(0, 1)[0] == 0.0 and wilson_interval(1, 1)[1] == 1.0
    for bad in ((1, 0), (-1, 5), (6, 5)):
        with pytest.raises(ValueError):
            wilson_interval(*bad)


@pytest.mark.usefixtures("tenants")
def test_report_counts_served_ratings_since_start_and_in_the_window(
    sessions: sessionmaker[Session],
) -> None:
    report = _report(sessions, "acme", window=5)
    start, window = report.since_start, report.window
    assert (start.rated, start.satisfied, start.satisfaction) == (20, 17, 0.85)
    assert (start.lower, start.upper) == pytest.approx(wilson_interval(17, 20))
    assert (start.meets_alpha, start.lower_meets_alpha) == (True, False)
    assert (window.rated, window.satisfied, window.satisfaction) == (5, 2, 0.4)
    assert (window.meets_alpha, window.lower_meets_alpha) == (False, False)
    assert (report.alpha, report.window_size, report.window_since) == (0.8, 5, None)
    assert report.status == "at risk"
    # The since-start figure is the one the SLA counters are checked against.
    with sessions.begin() as session:
        tally = recompute_sla_from_feedback(session, report.tenant_id)
    assert (tally.rated_count, tally.satisfied_count) == (start.rated, start.satisfied)

    # A window larger than the history is the history; the default holds 1,000.
    assert _report(sessions, "acme", window=50).window == start
    assert _report(sessions, "acme").window_size == DEFAULT_WINDOW == 1000

    since = START + dt.timedelta(minutes=14, seconds=30)
    by_time = _report(sessions, "acme", since=since)
    assert by_time.window == window
    assert (by_time.window_size, by_time.window_since) == (None, since)


@pytest.mark.usefixtures("tenants")
def test_status_and_a_tenant_without_ratings(sessions: sessionmaker[Session]) -> None:
    assert _report(sessions, "zeta").status == "met"
    assert _report(sessions, "slow").status == "missed"
    idle = _report(sessions, "idle")
    assert idle.status == "no ratings"
    for estimate in (idle.since_start, idle.window):
        assert (estimate.rated, estimate.satisfied) == (0, 0)
        assert estimate.satisfaction is None and estimate.lower is None
        assert estimate.meets_alpha is None and estimate.lower_meets_alpha is None
    with pytest.raises(ValueError, match="window"):
        _report(sessions, "idle", window=0)


@pytest.mark.usefixtures("tenants")
def test_sla_prints_one_row_per_tenant(run: Callable[..., Run]) -> None:
    result = run("sla", "--window", "5")
    assert result.code == 0, result
    header, *rows = result.out.splitlines()
    assert (
        " ".join(header.split())
        == "tenant alpha since start [95% CI] n last 5 [95% CI] n all served, estimated [95%] "
        "served status"
    )
    lo, hi = wilson_interval(17, 20)
    wlo, whi = wilson_interval(2, 5)
    assert [row.split()[0] for row in rows] == ["acme", "idle", "slow", "zeta"]
    assert rows[0].split() == [
        "acme",
        "0.8",
        "0.8500",
        f"[{lo:.4f},",
        f"{hi:.4f}]",
        "20",
        "0.4000",
        f"[{wlo:.4f},",
        f"{whi:.4f}]",
        "5",
        "-",  # these ratings were stored without routing: no served answer is on record
        "0",
        "at",
        "risk",
    ]
    assert rows[1].split() == ["idle", "0.5", "-", "0", "-", "0", "-", "0", "no", "ratings"]
    assert rows[2].split()[-1] == "missed" and rows[3].split()[-1] == "met"


@pytest.mark.usefixtures("tenants")
def test_sla_json_for_one_tenant(run: Callable[..., Run]) -> None:
    result = run("sla", "--tenant", "acme", "--since", "2025-03-01T12:14:30Z", "--json")
    assert result.code == 0, result
    [document] = json.loads(result.out)
    assert (document["tenant"], document["alpha"], document["status"]) == ("acme", 0.8, "at risk")
    assert document["since_start"]["rated"] == 20
    assert document["since_start"]["lower_meets_alpha"] is False
    window = document["window"]
    assert (window["rated"], window["satisfied"], window["satisfaction"]) == (5, 2, 0.4)
    assert window["since"] == "2025-03-01T12:14:30+00:00" and "size" not in window

    [idle] = json.loads(run("sla", "--tenant", "idle", "--json").out)
    assert idle["status"] == "no ratings"
    assert idle["since_start"]["satisfaction"] is None
    assert idle["window"]["size"] == 1000


def test_sla_without_tenants(run: Callable[..., Run]) -> None:
    assert "no tenants" in run("sla").out
    assert json.loads(run("sla", "--json").out) == []


@pytest.mark.usefixtures("tenants")
def test_sla_refuses_bad_arguments(run: Callable[..., Run]) -> None:
    assert "unknown tenant 'nobody'" in one_error_line(run("sla", "--tenant", "nobody"))
    for args, message in (
        (["--window", "0"], "must be >= 1"),
        (["--since", "2025-03-01T12:00"], "no UTC offset"),
        (["--since", "yesterday"], "not an ISO 8601 time"),
        (["--window", "5", "--since", "2025-03-01T12:00Z"], "not allowed with"),
    ):
        result = run("sla", *args)
        assert result.code == 2 and message in result.err, result
