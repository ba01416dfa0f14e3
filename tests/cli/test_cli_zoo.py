"""`messplus zoo register|list`: the database names the models Triton serves, priced from
the same data."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from db.zoo import list_models
from router.dataset import write_csv
from router.synthetic import synthetic_zoo
from tests.cli.conftest import Run, one_error_line


def _zoo(sessions: sessionmaker[Session]) -> list[tuple[str, str, int, float, float, str]]:
    with sessions.begin() as session:
        return [
            (
                m.name,
                m.triton_model_name,
                m.position,
                m.cost_per_request,
                m.cost_per_token,
                m.cost_unit,
            )
            for m in list_models(session)
        ]


def test_register_defaults_to_the_synthetic_zoo_triton_serves(
    run: Callable[..., Run], sessions: sessionmaker[Session]
) -> None:
    assert "no models" in run("zoo", "list").out
    result = run("zoo", "register")
    assert result.code == 0, result
    data = synthetic_zoo(2000, seed=0).data
    mean = data.mean_cost()
    stored = _zoo(sessions)
    assert [row[:3] for row in stored] == [(m, m, i) for i, m in enumerate(data.models)]
    assert [row[3] for row in stored] == pytest.approx(list(mean))
    assert {row[4:] for row in stored} == {(0.0, "J")}
    # Registering again changes nothing; --unit relabels the costs.
    assert run("zoo", "register").code == 0
    assert _zoo(sessions) == stored
    assert run("zoo", "register", "--unit", "Wh").code == 0
    assert {row[5] for row in _zoo(sessions)} == {"Wh"}
    listing = run("zoo", "list").out.splitlines()
    assert len(listing) == 1 + data.n_models
    assert listing[1].split()[:3] == ["0", data.models[0], data.models[0]]


def test_register_reads_a_csv_in_column_order(
    run: Callable[..., Run], sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    data = synthetic_zoo(
        40, seed=5, models=("b-small", "a-big"), skills=(0.0, 1.0), cost_j=(1.0, 9.0)
    ).data
    path = tmp_path / "zoo.csv"
    write_csv(data, path)
    assert run("zoo", "register", "--data", str(path)).code == 0
    stored = _zoo(sessions)
    assert [(name, position) for name, _, position, *_ in stored] == [
        ("b-small", 0),
        ("a-big", 1),
    ]
    assert [row[3] for row in stored] == pytest.approx(list(data.mean_cost()))


def test_register_refuses_bad_data_and_units(run: Callable[..., Run], tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("doc_id,input_text\n1,hello\n")
    assert "no label columns" in one_error_line(run("zoo", "register", "--data", str(path)))
    missing = tmp_path / "missing.csv"
    assert "no such file" in one_error_line(run("zoo", "register", "--data", str(missing)))
    assert "--unit" in one_error_line(run("zoo", "register", "--unit", "x" * 17))
