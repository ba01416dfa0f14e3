"""Labelled zoo data: per prompt, whether each model satisfied the user and what it cost.

This is the one in-memory shape every consumer shares: replay, benchmarks, the local Triton
replay zoo and the tests. It is loaded from the MESS+ authors' simulator CSV format
(doc_id, input_text, benchmark_name, then per model NAME: label_NAME, energy_consumption_NAME,
inference_time_NAME; column order = model order, cheapest first) or generated synthetically.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

__all__ = ["DatasetError", "ZooData", "interleave", "load_csv", "write_csv"]

LABEL_PREFIX = "label_"
ENERGY_PREFIX = "energy_consumption_"
LATENCY_PREFIX = "inference_time_"
MAX_CSV_BYTES = 512 * 1024 * 1024


class DatasetError(ValueError):
    """A labelled data file that cannot be used; the message names the problem in one line."""


@dataclass(frozen=True)
class ZooData:
    """Outcomes of M models on N prompts. Arrays are (N, M), models ordered cheapest first."""

    name: str
    models: tuple[str, ...]
    prompts: tuple[str, ...]
    satisfied: npt.NDArray[np.int8]
    cost: npt.NDArray[np.float64]
    latency_s: npt.NDArray[np.float64]
    cost_unit: str = "J"
    # Per prompt, the kind of request it is (the CSV's benchmark_name). Only offline
    # references such as `stratified` read it; a router never does.
    groups: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        n, m = len(self.prompts), len(self.models)
        for field in ("satisfied", "cost", "latency_s"):
            if getattr(self, field).shape != (n, m):
                raise DatasetError(f"{field} has shape {getattr(self, field).shape}, want {(n, m)}")
        if not self.groups:
            object.__setattr__(self, "groups", (self.name,) * n)
        if len(self.groups) != n:
            raise DatasetError(f"groups has {len(self.groups)} entries, want {n}")

    @property
    def n_requests(self) -> int:
        return len(self.prompts)

    @property
    def n_models(self) -> int:
        return len(self.models)

    def subset(self, rows: slice) -> ZooData:
        """The same zoo on a slice of its prompts (e.g. history apart from a live batch)."""
        return ZooData(
            name=self.name,
            models=self.models,
            prompts=self.prompts[rows],
            satisfied=self.satisfied[rows],
            cost=self.cost[rows],
            latency_s=self.latency_s[rows],
            cost_unit=self.cost_unit,
            groups=self.groups[rows],
        )

    def accuracy(self) -> npt.NDArray[np.float64]:
        """Each model's share of satisfied prompts."""
        return self.satisfied.mean(axis=0)

    def mean_cost(self) -> npt.NDArray[np.float64]:
        return self.cost.mean(axis=0)


def _model_names(header: list[str]) -> tuple[str, ...]:
    names = tuple(col[len(LABEL_PREFIX) :] for col in header if col.startswith(LABEL_PREFIX))
    if not names:
        raise DatasetError(f"no label columns (expected columns named {LABEL_PREFIX}<model>)")
    for name in names:
        if f"{ENERGY_PREFIX}{name}" not in header:
            raise DatasetError(f"model {name!r} has a label column but no {ENERGY_PREFIX}{name}")
    if "input_text" not in header:
        raise DatasetError("no input_text column")
    return names


def _number(raw: str, line: int, column: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise DatasetError(f"line {line}: {column} is not a number: {raw[:40]!r}") from None
    if not math.isfinite(value) or value < 0:
        raise DatasetError(f"line {line}: {column} must be a finite number >= 0, got {raw!r}")
    return value


def load_csv(path: str | Path) -> ZooData:
    """Read a labelled zoo CSV, validating every cell so bad data fails loudly and early."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"no such file: {path}")
    if path.stat().st_size > MAX_CSV_BYTES:
        raise DatasetError(f"{path} is larger than {MAX_CSV_BYTES} bytes")
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                raise DatasetError(f"{path} is empty")
            models = _model_names(header)
            column = {name: i for i, name in enumerate(header)}
            prompts: list[str] = []
            groups: list[str] = []
            labels: list[list[int]] = []
            costs: list[list[float]] = []
            latencies: list[list[float]] = []
            for line, row in enumerate(reader, start=2):
                if not row:
                    continue
                if len(row) != len(header):
                    raise DatasetError(f"line {line}: {len(row)} fields, header has {len(header)}")
                prompts.append(row[column["input_text"]])
                if "benchmark_name" in column:
                    groups.append(row[column["benchmark_name"]])
                label_row = []
                for model in models:
                    raw = row[column[LABEL_PREFIX + model]].strip()
                    if raw not in ("0", "1"):
                        raise DatasetError(
                            f"line {line}: {LABEL_PREFIX}{model} must be 0 or 1, got {raw[:20]!r}"
                        )
                    label_row.append(int(raw))
                labels.append(label_row)
                costs.append(
                    [
                        _number(row[column[ENERGY_PREFIX + m]], line, ENERGY_PREFIX + m)
                        for m in models
                    ]
                )
                latencies.append(
                    [
                        _number(row[column[LATENCY_PREFIX + m]], line, LATENCY_PREFIX + m)
                        if LATENCY_PREFIX + m in column
                        else 0.0
                        for m in models
                    ]
                )
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path} is not valid UTF-8 (byte {exc.start})") from None
    except csv.Error as exc:
        raise DatasetError(f"{path}: malformed CSV: {exc}") from None
    if not prompts:
        raise DatasetError(f"{path} has a header but no data rows")
    return ZooData(
        name=path.stem,
        models=models,
        prompts=tuple(prompts),
        satisfied=np.asarray(labels, dtype=np.int8),
        cost=np.asarray(costs, dtype=np.float64),
        latency_s=np.asarray(latencies, dtype=np.float64),
        groups=tuple(groups),
    )


def interleave(parts: Sequence[ZooData], seed: int, name: str = "mixed") -> ZooData:
    """Several data sets of the same zoo as one stream of traffic, rows shuffled by seed;
    each row keeps its set's group, so references can still tell the kinds apart."""
    if not parts:
        raise DatasetError("nothing to interleave")
    models, unit = parts[0].models, parts[0].cost_unit
    for part in parts[1:]:
        if part.models != models or part.cost_unit != unit:
            raise DatasetError(
                f"{part.name} has models {list(part.models)} in {part.cost_unit}, "
                f"{parts[0].name} has {list(models)} in {unit}: not one zoo"
            )
    order = np.random.default_rng(seed).permutation(sum(part.n_requests for part in parts))
    prompts = [prompt for part in parts for prompt in part.prompts]
    groups = [group for part in parts for group in part.groups]
    return ZooData(
        name=name,
        models=models,
        prompts=tuple(prompts[i] for i in order),
        satisfied=np.concatenate([part.satisfied for part in parts])[order],
        cost=np.concatenate([part.cost for part in parts])[order],
        latency_s=np.concatenate([part.latency_s for part in parts])[order],
        cost_unit=unit,
        groups=tuple(groups[i] for i in order),
    )


def write_csv(data: ZooData, path: str | Path) -> None:
    """Write zoo data in the format load_csv reads (used for synthetic zoos and tests)."""
    header = ["doc_id", "input_text", "benchmark_name"]
    for model in data.models:
        header += [LABEL_PREFIX + model, ENERGY_PREFIX + model, LATENCY_PREFIX + model]
    with Path(path).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for i, prompt in enumerate(data.prompts):
            row: list[object] = [i, prompt, data.groups[i]]
            for m in range(data.n_models):
                row += [int(data.satisfied[i, m]), data.cost[i, m], data.latency_s[i, m]]
            writer.writerow(row)
