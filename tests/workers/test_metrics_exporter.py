"""Worker metrics without services: settings, figures of several processes added up by the
exporter, and a dashboard that asks only for metrics the exporter serves."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from sqlalchemy import update

from db.engine import make_engine, make_sessionmaker
from db.migrate import upgrade
from db.models import SlaState
from router.synthetic import synthetic_zoo
from tests.prometheus import dashboard_metric_names, sample_names, samples
from workers.metrics import exporter_registry
from workers.provision import add_tenant, register_zoo
from workers.settings import SettingsError, load_settings

# One worker process's life in miniature: it counts into the directory given, decides a chunk
# with the predictor version given, and shuts down cleanly if told to.
RECORD = """
import sys
from pathlib import Path

from workers import metrics
from workers.errors import InferenceUnavailable

metrics.record_to(Path(sys.argv[1]))
m = metrics.current()
m.chunk_routed({("acme", "small", False): 3, ("acme", "large", True): 1}, int(sys.argv[2]), 0.01)
with m.triton_call("small"):
    pass
try:
    with m.triton_call("large"):
        raise InferenceUnavailable("connection refused")
except InferenceUnavailable as exc:
    m.task_retried("messplus.infer", exc)
m.requests_failed("large", "unavailable: connection refused", 1)
m.requests_failed("small", "something without a class", 1)
m.ratings_stored({"new": 2, "duplicate": 0})
if sys.argv[3] == "shutdown":
    m.close()
"""


def _worker_process(directory: Path, version: int, ending: str) -> None:
    subprocess.run([sys.executable, "-c", RECORD, str(directory), str(version), ending], check=True)


@pytest.fixture
def exposition(tmp_path: Path) -> str:
    """What the exporter serves after two worker processes ran, one of them still 'alive',
    over a SQLite database with one tenant and a zoo."""
    directory = tmp_path / "metrics"
    _worker_process(directory, 7, "shutdown")
    _worker_process(directory, 8, "alive")
    url = f"sqlite:///{tmp_path / 'messplus.db'}"
    upgrade(url)
    sessions = make_sessionmaker(make_engine(url))
    with sessions.begin() as session:
        register_zoo(session, synthetic_zoo(50, seed=0).data)
        add_tenant(session, "acme", 0.7)
    return generate_latest(exporter_registry(sessions, directory, window=100)).decode()


def test_the_exporter_adds_up_every_process(exposition: str) -> None:
    def value(name: str, **labels: str) -> float:
        return samples(exposition, name)[tuple(sorted(labels.items()))]

    assert value("messplus_routed_requests_total", tenant="acme", model="small") == 6
    assert value("messplus_routed_requests_total", tenant="acme", model="large") == 2
    assert value("messplus_explored_requests_total", tenant="acme") == 2
    assert value("messplus_route_chunk_seconds_count") == 2
    assert value("messplus_triton_request_seconds_count", model="small") == 2
    assert value("messplus_triton_errors_total", model="large", kind="unavailable") == 2
    assert (
        value("messplus_task_retries_total", task="messplus.infer", reason="InferenceUnavailable")
        == 2
    )
    assert value("messplus_failed_requests_total", model="large", reason="unavailable") == 2
    # A free-text reason never becomes a label of its own.
    assert value("messplus_failed_requests_total", model="small", reason="other") == 2
    assert value("messplus_ratings_total", outcome="new") == 4
    assert ("outcome", "duplicate") not in {
        label for key in samples(exposition, "messplus_ratings_total") for label in key
    }
    # The per-worker gauge: the process that shut down took its series with it.
    versions = samples(exposition, "messplus_predictor_version_in_use")
    assert list(versions.values()) == [8.0]
    # The database figures: the tenant's SLA, no ratings yet, no predictor version.
    assert value("messplus_database_up") == 1
    assert value("messplus_tenant_alpha", tenant="acme") == 0.7
    assert value("messplus_tenant_virtual_queue", tenant="acme") > 0
    assert value("messplus_tenant_rated_answers", tenant="acme", scope="window") == 0
    assert samples(exposition, "messplus_tenant_satisfaction") == {}
    assert value("messplus_predictor_active_version") == 0
    assert value("messplus_satisfaction_window_answers") == 100


def test_the_dashboard_asks_only_for_exported_metrics(exposition: str) -> None:
    used = dashboard_metric_names()
    assert len(used) >= 15, f"the dashboard's queries were not found: {sorted(used)}"
    assert used - sample_names(exposition) == set()


def test_an_unreadable_database_is_a_figure_not_an_error(tmp_path: Path) -> None:
    sessions = make_sessionmaker(make_engine(f"sqlite:///{tmp_path / 'not-migrated.db'}"))
    exposition = generate_latest(exporter_registry(sessions, None, window=100)).decode()
    assert samples(exposition, "messplus_database_up") == {(): 0.0}
    assert samples(exposition, "messplus_tenant_alpha") == {}


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("MESSPLUS_METRICS_DIR", "relative/metrics", "absolute"),
        ("MESSPLUS_METRICS_PORT", "70000", "0..65535"),
        ("MESSPLUS_METRICS_PORT", "ninety", "not a valid int"),
    ],
)
def test_metrics_settings_are_checked(
    variable: str, value: str, message: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MESSPLUS_DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    with pytest.raises(SettingsError, match=message):
        load_settings({variable: value})


def test_metrics_settings_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MESSPLUS_DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    settings = load_settings({"MESSPLUS_METRICS_DIR": ""})
    assert (settings.metrics_dir, settings.metrics_port) == (None, 9464)
    assert load_settings({"MESSPLUS_METRICS_DIR": "/var/lib/m"}).metrics_dir == "/var/lib/m"


def test_float_dust_in_stored_sums_reads_as_zero(tmp_path: Path) -> None:
    """Sums of many +-(alpha - p) steps end a few ulps off zero once every answer is rated;
    the gauges show 0 then, and keep real values, negative ones included, as they are."""
    url = f"sqlite:///{tmp_path / 'messplus.db'}"
    upgrade(url)
    sessions = make_sessionmaker(make_engine(url))
    with sessions.begin() as session:
        register_zoo(session, synthetic_zoo(50, seed=0).data)
        dusty = add_tenant(session, "dusty", 0.7).id
        ahead = add_tenant(session, "ahead", 0.7).id
        session.execute(
            update(SlaState)
            .where(SlaState.tenant_id == dusty)
            .values(pending_debt=-1.3322676295501878e-15, virtual_queue=4.4e-16)
        )
        session.execute(
            update(SlaState).where(SlaState.tenant_id == ahead).values(pending_debt=-0.3)
        )
    exposition = generate_latest(exporter_registry(sessions, None, window=100)).decode()
    pending = samples(exposition, "messplus_tenant_pending_debt")
    assert pending[(("tenant", "dusty"),)] == 0.0
    assert pending[(("tenant", "ahead"),)] == -0.3
    assert samples(exposition, "messplus_tenant_virtual_queue")[(("tenant", "dusty"),)] == 0.0
