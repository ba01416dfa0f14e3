"""`messplus report` against a real database (SQLite and Postgres): a job of 1,000 requests
routed by the router stage, answered and rated through db/ and the feedback stage, then
reported; the page, every PNG and the table are checked against the rows themselves."""

from __future__ import annotations

import csv
import datetime as dt
import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.inference import ModelAnswer, mark_done, mark_failed, record_responses
from db.jobs import create_job
from db.models import Feedback, Request, Response, ZooModel, utcnow
from db.pending_ratings import SubmittedRating
from db.predictors import publish_version
from db.report_data import job_scope
from db.reports import job_summary
from router.synthetic import synthetic_zoo
from tests.answered import rate_by_hand
from tests.cli.conftest import Run, one_error_line
from workers.cli._input import point_in_time
from workers.provision import add_tenant, register_zoo
from workers.report import (
    NO_VERSION,
    PLOTS,
    Series,
    calibration_curves,
    gather,
    model_mix,
    running_satisfaction,
)
from workers.routing import PredictorCache, route_chunk
from workers.training import train_from_data

N_REQUESTS = 1_000
CHUNK = 100
WARM_START = 500


@dataclass(frozen=True)
class Built:
    job_id: str
    tenant_id: int
    version_id: int
    failed: list[int]


def _fails(row: int) -> bool:
    """About one request in a hundred has its served answer fail."""
    return row % 97 == 13


def _rates(row: int) -> bool:
    """About four requests in five are rated (every answer they got)."""
    return row % 5 != 2


def _build_job(sessions: sessionmaker[Session], n: int = N_REQUESTS) -> Built:
    """Tenants acme (alpha 0.7, with a warm-started predictor) and globex (no requests);
    one job of acme's, routed a chunk at a time by the router stage, answered (explored
    requests by every model) and rated before the next chunk, as a live service would."""
    zoo = synthetic_zoo(n + WARM_START, seed=11)
    data = zoo.data
    with sessions.begin() as session:
        model_ids = [m.id for m in register_zoo(session, data)]
        version_id = publish_version(
            session,
            train_from_data(data.subset(slice(n, n + WARM_START))).to_bytes(),
            {},
            "warm start",
            activate=True,
        ).id
        tenant_id = add_tenant(session, "acme", 0.7).id
        add_tenant(session, "globex", 0.6)
        job_id, request_ids = create_job(session, tenant_id, list(data.prompts[:n]), "test")
    row_of = {request_id: row for row, request_id in enumerate(request_ids)}
    name_of = dict(zip(model_ids, data.models, strict=True))
    cache, rng = PredictorCache(), np.random.default_rng(5)
    failed: list[int] = []
    for start in range(0, n, CHUNK):
        chunk = request_ids[start : start + CHUNK]
        sent = route_chunk(sessions, chunk, rng, cache)
        with sessions.begin() as session:
            served = dict(
                session.execute(
                    select(Request.id, Request.served_model_id).where(Request.id.in_(chunk))
                ).all()
            )
            answers = [
                ModelAnswer(
                    request_id=request_id,
                    model_id=model_id,
                    text=f"{name} answers",
                    tokens=5,
                    latency_s=float(data.latency_s[row_of[request_id], m]),
                    cost=float(data.cost[row_of[request_id], m]),
                    would_satisfy=bool(data.satisfied[row_of[request_id], m]),
                )
                for m, (model_id, name) in enumerate(name_of.items())
                for request_id in sent.get(name, [])
                if not (_fails(row_of[request_id]) and served[request_id] == model_id)
            ]
            record_responses(session, answers)
            chunk_failed = [r for r in chunk if _fails(row_of[r])]
            mark_failed(session, chunk_failed, "triton timed out")
            mark_done(session, chunk)
        failed += chunk_failed
        rated_at = utcnow()
        rate_by_hand(
            sessions,
            tenant_id,
            [
                SubmittedRating(a.request_id, bool(a.would_satisfy), name_of[a.model_id], rated_at)
                for a in answers
                if _rates(row_of[a.request_id])
            ],
        )
    return Built(job_id, tenant_id, version_id, failed)


@pytest.fixture
def built(run: Callable[..., Run], sessions: sessionmaker[Session]) -> Built:
    return _build_job(sessions)


@pytest.fixture
def small(run: Callable[..., Run], sessions: sessionmaker[Session]) -> Built:
    return _build_job(sessions, n=40)


def _expected_table(sessions: sessionmaker[Session], job_id: str) -> dict[str, tuple]:
    """model -> (requests, cost, rated, satisfied), counted row by row in Python."""
    with sessions.begin() as session:
        names = dict(
            session.execute(select(ZooModel.id, ZooModel.name).order_by(ZooModel.position)).all()
        )
        served = dict(
            session.execute(
                select(Request.id, Request.served_model_id).where(Request.job_id == job_id)
            ).all()
        )
        responses = session.execute(select(Response.request_id, Response.model_id, Response.cost))
        feedback = session.execute(
            select(Feedback.request_id, Feedback.model_id, Feedback.satisfied)
        ).all()
        cost: dict[int, float] = defaultdict(float)
        for request_id, model_id, answer_cost in responses:
            if request_id in served:
                cost[model_id] += answer_cost
    requests = Counter(served.values())
    rated: Counter[int] = Counter()
    satisfied: Counter[int] = Counter()
    for request_id, model_id, rating in feedback:
        if served.get(request_id) == model_id:
            rated[model_id] += 1
            satisfied[model_id] += rating
    return {
        name: (requests[model_id], cost[model_id], rated[model_id], satisfied[model_id])
        for model_id, name in names.items()
    }


class _Page(HTMLParser):
    """The cells of index.html's table and the images it shows."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.images: list[str] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images.append(dict(attrs)["src"] or "")

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None


def _number(cell: str) -> float:
    return float(cell.replace(",", "").rstrip("%"))


def _check_report(out_dir: Path, expected: dict[str, tuple]) -> None:
    page = _Page()
    page.feed((out_dir / "index.html").read_text(encoding="utf-8"))
    assert page.images == list(PLOTS)
    for name in PLOTS:
        with Image.open(out_dir / name) as image:
            image.verify()
        with Image.open(out_dir / name) as image:
            assert image.format == "PNG" and image.width >= 800 and image.height >= 400
            colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
            assert colours is None or len(colours) > 50, f"{name} looks blank"

    header, *body = page.rows
    assert header == [
        "model",
        "requests",
        "share",
        "cost [J]",
        "rated",
        "satisfied",
        "satisfaction",
    ]
    *per_model, total = body
    with (out_dir / "table.csv").open(encoding="utf-8") as handle:
        csv_rows = list(csv.DictReader(handle))
    routed = sum(requests for requests, *_ in expected.values())
    assert [row[0] for row in per_model] == list(expected)
    for cells, row in zip(per_model, csv_rows, strict=False):
        requests, cost, rated, satisfied = expected[cells[0]]
        assert [int(_number(cells[i])) for i in (1, 4, 5)] == [requests, rated, satisfied]
        assert _number(cells[2]) == pytest.approx(100 * requests / routed, abs=0.05)
        assert _number(cells[3]) == pytest.approx(cost, abs=5e-4)
        if rated:
            assert float(cells[6]) == pytest.approx(satisfied / rated, abs=5e-5)
        assert row["model"] == cells[0]
        assert (int(row["requests"]), int(row["rated"]), int(row["satisfied"])) == (
            requests,
            rated,
            satisfied,
        )
        assert float(row["cost"]) == pytest.approx(cost, rel=1e-9)
    sums = [sum(values[i] for values in expected.values()) for i in range(4)]
    assert total[0] == "total" and csv_rows[-1]["model"] == "total"
    assert [int(_number(total[i])) for i in (1, 4, 5)] == [sums[0], sums[2], sums[3]]
    assert float(csv_rows[-1]["cost"]) == pytest.approx(sums[1], rel=1e-9)


def test_report_of_a_1000_request_job(
    run: Callable[..., Run], sessions: sessionmaker[Session], built: Built, tmp_path: Path
) -> None:
    expected = _expected_table(sessions, built.job_id)
    with sessions.begin() as session:
        summary = job_summary(session, built.job_id, built.tenant_id)
    # The test's own count agrees with the project's job summary.
    assert summary.requests == N_REQUESTS and summary.failed == len(built.failed) > 0
    assert {m: v[0] for m, v in expected.items() if v[0]} == summary.served_by
    assert sum(v[1] for v in expected.values()) == pytest.approx(summary.cost, rel=1e-9)
    assert (sum(v[2] for v in expected.values()), sum(v[3] for v in expected.values())) == (
        summary.rated,
        summary.satisfied,
    )
    assert 0 < summary.rated < summary.done and summary.explored > 0

    out_dir = tmp_path / "report" / "acme"  # made with its parents
    result = run("report", "--job", built.job_id, "--tenant", "acme", "-o", str(out_dir))
    assert result.code == 0, result
    assert f"report of {N_REQUESTS:,} routed requests written to" in result.out
    _check_report(out_dir, expected)
    page = (out_dir / "index.html").read_text(encoding="utf-8")
    assert f"job {built.job_id}" in page and f"version {built.version_id} (active)" in page

    # The tenant's requests since an hour ago are this job's: the same table. --job alone
    # finds the job's tenant.
    since_dir = tmp_path / "since"
    assert run("report", "--tenant", "acme", "--since", "1h", "-o", str(since_dir)).code == 0
    _check_report(since_dir, expected)
    # The title keeps its time on one line: a browser breaks at the ISO date's hyphens.
    heading = re.search(r"<h1>(.*)</h1>", (since_dir / "index.html").read_text()).group(1)
    assert re.fullmatch(
        r'messplus report: acme, requests submitted since <span class="nowrap">'
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00</span>",
        heading,
    ), heading
    assert run("report", "--job", built.job_id, "-o", str(tmp_path / "job")).code == 0
    assert (tmp_path / "job" / "table.csv").read_text() == (out_dir / "table.csv").read_text()


def test_series_behind_the_plots_match_the_rows(
    run: Callable[..., Run], sessions: sessionmaker[Session], built: Built
) -> None:
    with sessions.begin() as session:
        scope = job_scope(session, built.job_id, "acme")
        data = gather(session, scope)
        summary = job_summary(session, built.job_id, built.tenant_id)
    series = data.series
    assert data.active_version_id == built.version_id
    assert series.n == N_REQUESTS and int(series.explored.sum()) == summary.explored
    assert int(series.failed.sum()) == len(built.failed)
    assert series.cost.sum() == pytest.approx(summary.cost, rel=1e-9)
    assert np.all(series.served_cost <= series.cost + 1e-9)
    running = running_satisfaction(series.satisfied)
    assert len(running) == summary.rated
    assert running[-1] == pytest.approx(summary.satisfaction)
    # Every decision was made by the warm-started version with the zoo unchanged since.
    assert set(series.version.tolist()) == {built.version_id}
    [curve] = calibration_curves(series)
    assert curve.version == built.version_id and curve.count.sum() == summary.rated
    assert np.all((curve.predicted >= 0) & (curve.predicted <= 1))
    mix = model_mix(series, len(data.models))
    assert mix.sizes.sum() == N_REQUESTS and np.allclose(mix.shares.sum(axis=1), 1.0)
    per_model = np.bincount(series.model, minlength=len(data.models))
    assert dict(zip(data.models, per_model.tolist(), strict=True)) == {
        f.name: f.requests for f in data.table
    }


def _series(**arrays: Sequence[float]) -> Series:
    n = len(next(iter(arrays.values())))
    defaults: dict[str, np.ndarray] = {
        "model": np.zeros(n, dtype=np.int64),
        "explored": np.zeros(n, dtype=bool),
        "failed": np.zeros(n, dtype=bool),
        "virtual_queue": np.zeros(n),
        "satisfied": np.full(n, np.nan),
        "cost": np.ones(n),
        "served_cost": np.ones(n),
        "served_probability": np.full(n, np.nan),
        "version": np.full(n, NO_VERSION, dtype=np.int64),
    }
    return Series(
        **(defaults | {k: np.asarray(v, dtype=defaults[k].dtype) for k, v in arrays.items()})
    )


def test_calibration_bins_rated_answers_per_version() -> None:
    series = _series(
        served_probability=[0.05, 0.07, 0.95, 0.95, 0.95, 1.0, 0.5, 0.5],
        satisfied=[0, 1, 1, 1, 0, 1, math.nan, 1],
        version=[3, 3, 3, 3, 3, 3, 3, 4],
    )
    three, four = calibration_curves(series, bins=10)
    assert (three.version, four.version) == (3, 4)
    assert three.count.tolist() == [2, 4]  # p = 1.0 falls in the top bin
    assert three.predicted == pytest.approx([0.06, (0.95 * 3 + 1.0) / 4])
    assert three.observed == pytest.approx([0.5, 0.75])
    assert three.ece == pytest.approx((2 * 0.44 + 4 * abs(0.9625 - 0.75)) / 6)
    assert (four.count.tolist(), four.observed.tolist()) == ([1], [1.0])


def test_model_mix_windows_cover_every_request_once() -> None:
    series = _series(model=[0] * 7 + [1] * 3, explored=[0] * 9 + [1])
    mix = model_mix(series, n_models=3, windows=4)
    assert mix.starts.tolist() == [0, 2, 5, 7] and mix.sizes.tolist() == [2, 3, 2, 3]
    assert mix.shares.tolist() == [[1, 0, 0], [1, 0, 0], [1, 0, 0], [0, 1, 0]]
    assert mix.explored_share.tolist() == [0, 0, 0, pytest.approx(1 / 3)]
    assert model_mix(_series(model=[2, 2]), 3).sizes.tolist() == [1, 1]
    running = running_satisfaction(np.array([1.0, math.nan, 0.0, 1.0]))
    assert running.tolist() == [1.0, 0.5, pytest.approx(2 / 3)]


def test_since_reads_iso_times_with_an_offset_and_durations_ago() -> None:
    now = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)
    assert point_in_time("2025-02-28T08:30Z", now) == dt.datetime(2025, 2, 28, 8, 30, tzinfo=dt.UTC)
    assert point_in_time("90m", now) == now - dt.timedelta(minutes=90)
    assert point_in_time(" 7d ", now) == now - dt.timedelta(days=7)
    assert point_in_time("1.5h", now) == now - dt.timedelta(minutes=90)
    with pytest.raises(ValueError, match="no UTC offset"):
        point_in_time("2025-02-28T08:30", now)
    for bad in ("yesterday", "7 days", "-1h", ""):
        with pytest.raises(ValueError, match="not an ISO 8601 time"):
            point_in_time(bad, now)


def test_report_refuses_what_it_cannot_report(
    run: Callable[..., Run], small: Built, tmp_path: Path
) -> None:
    out = str(tmp_path / "out")
    job = small.job_id
    for args, message in (
        (["--tenant", "nobody"], "unknown tenant 'nobody'"),
        (["--job", job, "--tenant", "nobody"], "unknown tenant 'nobody'"),
        (["--job", "0" * 32], f"unknown job {'0' * 32!r}"),
        # Another tenant's job reads as unknown, as in `messplus status`.
        (["--job", job, "--tenant", "globex"], f"unknown job {job!r}"),
        (["--tenant", "globex"], "nothing to report: no routed requests for tenant 'globex'"),
        (
            ["--tenant", "acme", "--since", "2999-01-01T00:00Z"],
            "no routed requests for tenant 'acme' (requests submitted since 2999-01-01",
        ),
        (["--tenant", "acme", "--since", "yesterday"], "--since: not an ISO 8601 time"),
        (["--tenant", "acme", "--since", "2025-03-01T12:00"], "no UTC offset"),
        (["--job", job, "--since", "1h"], "does not combine with --job"),
        ([], "say what to report"),
    ):
        line = one_error_line(run("report", *args, "-o", out))
        assert message in line, (args, line)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    for target in (blocker, blocker / "report"):
        line = one_error_line(run("report", "--job", job, "-o", str(target)))
        assert line.startswith(f"messplus: error: cannot write the report to {target}: "), line
    assert not (tmp_path / "out").exists()  # refused before anything was made
    assert run("report", "--job", job, "-o", out).code == 0


def test_the_virtual_queue_caption_explains_its_steps_at_chunk_boundaries() -> None:
    caption = PLOTS["virtual_queue.png"][1]
    assert "Steps at chunk boundaries are expected" in caption
    assert "sla_confidence standard errors" in caption
