"""What `messplus report` shows, and the directory it writes.

The figures are computed here from the rows db.report_data streams (pure numpy, testable
without a database); workers.report_plots draws them. The report is a directory: index.html
with the table and the PNGs next to it, referenced by relative paths, plus table.csv. Files
rather than base64 inside the HTML, because operators paste single plots into tickets and
chats, the HTML stays small enough to read as text, and the directory still needs nothing
from the network: zip or copy it whole.

The calibration curve uses the served model's predicted satisfaction stored with each
decision (routing_decisions.predicted_satisfaction), not a re-scoring by today's active
version: it is what the router acted on, predicted before the rating existed, whereas a
version trained since has seen these very ratings and would look better calibrated than it
is on new traffic. The curve is drawn per predictor version that decided requests in the
scope, the active one marked.
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import math
import re
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from sqlalchemy.orm import Session

from db.models import ZooModel
from db.predictors import active_version_id
from db.report_data import ModelFigures, ReportScope, RoutedRequest, model_figures, routed_requests
from db.sla_report import Estimate
from db.zoo import list_models
from router.messplus import MessPlusSettings

__all__ = [
    "CALIBRATION_BINS",
    "MIX_WINDOWS",
    "PLOTS",
    "CalibrationCurve",
    "ModelMix",
    "ReportData",
    "Series",
    "calibration_curves",
    "collect",
    "gather",
    "model_mix",
    "prepare_directory",
    "render_html",
    "running_satisfaction",
    "write_report",
]

CALIBRATION_BINS = 10
_ISO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:Z|[+-]\d\d:\d\d)?")
# Model-mix windows across the scope: enough to see the mix move, few enough that each
# window's shares rest on more than a handful of requests.
MIX_WINDOWS = 40
NO_VERSION = -1

# File name -> (title, how to read it); titles are the plots' own titles.
PLOTS: dict[str, tuple[str, str]] = {
    "satisfaction.png": (
        "Running satisfaction vs SLA alpha",
        "Share of rated served answers that satisfied, counted from the first rated "
        "answer of the scope, against the tenant's alpha (dashed). It wobbles early and "
        "should settle at or just above alpha; a line that stays below alpha means the SLA "
        "is being missed.",
    ),
    "virtual_queue.png": (
        "Virtual queue at each decision",
        "The SLA debt the router decided on (the tenant's queue plus the estimated debt of "
        "served answers not rated yet). A tenant's queue starts at V + headroom (dotted) and "
        "stays within some answers of it while the SLA is on track; one that keeps climbing "
        "means the models it is using fall short and the router is escalating to larger ones. "
        "Steps at chunk boundaries are expected: within a chunk of requests (256 by "
        "default) the queue moves by alpha minus each served answer's predicted "
        "satisfaction, and the next chunk reads the stored sums, which add the correction "
        "measured on rated answers and a margin of the tenant's sla_confidence standard "
        "errors of the unrated answers' estimate. That margin is largest while many "
        "answers are unrated and few ratings exist: before the first rating, 0.75 standard "
        "errors of 256 unrated answers are about 43 answers; it shrinks as ratings arrive.",
    ),
    "cost.png": (
        "Cumulative cost",
        "Everything charged, and what the served answers alone cost; the gap between the "
        "two lines is exploration (explored requests are answered by every model).",
    ),
    "model_mix.png": (
        "Model mix over time",
        "Share of requests served by each model per window of consecutive requests, "
        "cheapest model at the bottom; the black line is the share explored. The mix "
        "settles where the cheapest models just carry the SLA.",
    ),
    "calibration.png": (
        "Calibration of the served model's predicted satisfaction",
        "Rated served answers binned by the probability the router predicted for the "
        "served model when deciding, against the share that did satisfy; counts beside "
        "the points, one curve per predictor version. Points on the diagonal are "
        "calibrated; below it the predictor is over-confident, above it too cautious.",
    ),
}


@dataclass(frozen=True)
class Series:
    """The scope's routed requests in routing order, one array entry per request.

    `model` indexes ReportData.models (position order); `satisfied` is 1, 0 or NaN for an
    unrated answer; `served_probability` is the predicted satisfaction of the served model;
    `version` is the predictor version id, NO_VERSION for base rates.
    """

    model: npt.NDArray[np.int64]
    explored: npt.NDArray[np.bool_]
    failed: npt.NDArray[np.bool_]
    virtual_queue: npt.NDArray[np.float64]
    satisfied: npt.NDArray[np.float64]
    cost: npt.NDArray[np.float64]
    served_cost: npt.NDArray[np.float64]
    served_probability: npt.NDArray[np.float64]
    version: npt.NDArray[np.int64]

    @property
    def n(self) -> int:
        return len(self.model)


@dataclass(frozen=True)
class ModelMix:
    """Served shares per window: window w covers requests starts[w] .. starts[w] + sizes[w]."""

    starts: npt.NDArray[np.int64]
    sizes: npt.NDArray[np.int64]
    shares: npt.NDArray[np.float64]  # windows x models
    explored_share: npt.NDArray[np.float64]


@dataclass(frozen=True)
class CalibrationCurve:
    """One predictor version's reliability: per non-empty bin (from `lower` to `lower` +
    `bin_width`), the mean predicted probability, the observed share satisfied and the
    number of rated answers."""

    version: int
    bin_width: float
    lower: npt.NDArray[np.float64]
    predicted: npt.NDArray[np.float64]
    observed: npt.NDArray[np.float64]
    count: npt.NDArray[np.int64]

    @property
    def ece(self) -> float:
        """Expected calibration error, as workers.training scores held-out ratings."""
        return float(np.sum(self.count * np.abs(self.predicted - self.observed)) / self.count.sum())


@dataclass(frozen=True)
class ReportData:
    """Everything a report shows, read from the database in one transaction."""

    scope: ReportScope
    models: tuple[str, ...]
    cost_unit: str
    table: list[ModelFigures]
    series: Series
    active_version_id: int | None
    router_settings: MessPlusSettings
    generated_at: dt.datetime


def collect(
    rows: Iterable[RoutedRequest],
    zoo: Sequence[ZooModel],
    on_row: Callable[[int], object] = lambda _: None,
) -> Series:
    """Arrays of the streamed rows; calls on_row(1) per row (a progress bar's update).
    `zoo` is in position order, as db.zoo.list_models returns it."""
    position = {m.id: i for i, m in enumerate(zoo)}
    model, explored, failed, queue, satisfied = [], [], [], [], []
    cost, served_cost, probability, version = [], [], [], []
    for row in rows:
        model.append(position[row.served_model_id])
        explored.append(row.explored)
        failed.append(row.status == "failed")
        queue.append(row.virtual_queue)
        satisfied.append(math.nan if row.satisfied is None else float(row.satisfied))
        cost.append(row.cost)
        served_cost.append(row.served_cost)
        probability.append(row.predicted_satisfaction)
        version.append(NO_VERSION if row.predictor_version_id is None else row.predictor_version_id)
        on_row(1)
    return Series(
        model=np.asarray(model, dtype=np.int64),
        explored=np.asarray(explored, dtype=bool),
        failed=np.asarray(failed, dtype=bool),
        virtual_queue=np.asarray(queue, dtype=np.float64),
        satisfied=np.asarray(satisfied, dtype=np.float64),
        cost=np.asarray(cost, dtype=np.float64),
        served_cost=np.asarray(served_cost, dtype=np.float64),
        served_probability=np.asarray(probability, dtype=np.float64),
        version=np.asarray(version, dtype=np.int64),
    )


def gather(
    session: Session, scope: ReportScope, on_row: Callable[[int], object] = lambda _: None
) -> ReportData:
    """Read a report's figures; the caller checked the scope holds routed requests."""
    from workers.routing import tenant_settings

    zoo = list_models(session)
    return ReportData(
        scope=scope,
        models=tuple(m.name for m in zoo),
        cost_unit="/".join(sorted({m.cost_unit for m in zoo})),
        table=model_figures(session, scope),
        series=collect(routed_requests(session, scope), zoo, on_row),
        active_version_id=active_version_id(session),
        router_settings=tenant_settings(scope.tenant_settings),
        generated_at=dt.datetime.now(dt.UTC),
    )


def prepare_directory(out_dir: Path) -> None:
    """Create out_dir and write a scratch file in it, so permissions, a read-only mount or
    a path through a regular file raise OSError before anything slow has run."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=out_dir):
        pass


def running_satisfaction(satisfied: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Share satisfied after each rated answer (unrated requests skipped)."""
    rated = satisfied[~np.isnan(satisfied)]
    return np.cumsum(rated) / np.arange(1, len(rated) + 1)


def model_mix(series: Series, n_models: int, windows: int = MIX_WINDOWS) -> ModelMix:
    """Served shares in `windows` runs of consecutive requests of (nearly) equal size."""
    bounds = np.unique(np.linspace(0, series.n, min(windows, series.n) + 1).astype(np.int64))
    starts, stops = bounds[:-1], bounds[1:]
    shares = np.array(
        [
            np.bincount(series.model[a:b], minlength=n_models) / (b - a)
            for a, b in zip(starts, stops, strict=True)
        ]
    )
    explored = np.array([series.explored[a:b].mean() for a, b in zip(starts, stops, strict=True)])
    return ModelMix(starts, stops - starts, shares, explored)


def calibration_curves(series: Series, bins: int = CALIBRATION_BINS) -> list[CalibrationCurve]:
    """One curve per predictor version over its rated served answers."""
    rated = ~np.isnan(series.satisfied)
    curves = []
    for version in np.unique(series.version[rated]):
        mine = rated & (series.version == version)
        p, y = series.served_probability[mine], series.satisfied[mine]
        index = np.minimum((p * bins).astype(np.int64), bins - 1)
        count = np.bincount(index, minlength=bins)
        filled = count > 0
        curves.append(
            CalibrationCurve(
                version=int(version),
                bin_width=1.0 / bins,
                lower=np.flatnonzero(filled) / bins,
                predicted=(np.bincount(index, weights=p, minlength=bins) / np.maximum(count, 1))[
                    filled
                ],
                observed=(np.bincount(index, weights=y, minlength=bins) / np.maximum(count, 1))[
                    filled
                ],
                count=count[filled],
            )
        )
    return curves


def version_label(version: int, active_version_id: int | None) -> str:
    if version == NO_VERSION:
        return "base rates (no trained version)"
    return f"version {version}" + (" (active)" if version == active_version_id else "")


def write_report(data: ReportData, out_dir: Path) -> list[Path]:
    """Write the PNGs, table.csv and index.html (last) into out_dir; returns their paths."""
    from workers import report_plots

    out_dir.mkdir(parents=True, exist_ok=True)
    series, curves = data.series, calibration_curves(data.series)
    titles = {name: title for name, (title, _) in PLOTS.items()}
    report_plots.plot_satisfaction(
        running_satisfaction(series.satisfied),
        data.scope.alpha,
        titles["satisfaction.png"],
        out_dir / "satisfaction.png",
    )
    report_plots.plot_virtual_queue(
        series.virtual_queue,
        data.router_settings,
        titles["virtual_queue.png"],
        out_dir / "virtual_queue.png",
    )
    report_plots.plot_cost(
        series.cost, series.served_cost, data.cost_unit, titles["cost.png"], out_dir / "cost.png"
    )
    report_plots.plot_model_mix(
        model_mix(series, len(data.models)),
        data.models,
        titles["model_mix.png"],
        out_dir / "model_mix.png",
    )
    report_plots.plot_calibration(
        [(version_label(c.version, data.active_version_id), c) for c in curves],
        titles["calibration.png"],
        out_dir / "calibration.png",
    )
    _write_csv(data.table, out_dir / "table.csv")
    index = out_dir / "index.html"
    index.write_text(render_html(data, curves), encoding="utf-8")
    return [*(out_dir / name for name in PLOTS), out_dir / "table.csv", index]


TABLE_COLUMNS = ("model", "requests", "share", "cost", "rated", "satisfied", "satisfaction")


def _table_rows(
    table: Sequence[ModelFigures],
) -> list[tuple[str, int, float, float, int, int, float]]:
    """The table with a total row; share is of routed requests, satisfaction of rated
    served answers (NaN with none)."""
    total = ModelFigures(
        model_id=0,
        name="total",
        requests=sum(f.requests for f in table),
        cost=sum(f.cost for f in table),
        rated=sum(f.rated for f in table),
        satisfied=sum(f.satisfied for f in table),
    )
    return [
        (
            f.name,
            f.requests,
            f.requests / total.requests if total.requests else math.nan,
            f.cost,
            f.rated,
            f.satisfied,
            f.satisfied / f.rated if f.rated else math.nan,
        )
        for f in [*table, total]
    ]


def _write_csv(table: Sequence[ModelFigures], path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(TABLE_COLUMNS)
        writer.writerows(_table_rows(table))


def _share(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.1%}"


def _ratio(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.4f}"


def _summary(data: ReportData, curves: Sequence[CalibrationCurve]) -> list[tuple[str, str]]:
    series, scope = data.series, data.scope
    rated = int(np.sum(~np.isnan(series.satisfied)))
    estimate = Estimate.of(rated, int(np.nansum(series.satisfied)), scope.alpha)
    if estimate.satisfaction is None:
        satisfaction = "no rated answers yet"
    else:
        verdict = (
            "met: even the interval's lower bound reaches alpha"
            if estimate.lower_meets_alpha
            else "at or above alpha, not yet proven by the interval"
            if estimate.meets_alpha
            else "below alpha"
        )
        satisfaction = (
            f"{estimate.satisfaction:.4f} [95% CI {estimate.lower:.4f}, {estimate.upper:.4f}] "
            f"over {rated:,} rated served answers: {verdict}"
        )
    total_cost, served_cost = float(series.cost.sum()), float(series.served_cost.sum())
    versions, counts = np.unique(series.version, return_counts=True)
    decided_by = ", ".join(
        f"{version_label(int(v), data.active_version_id)}: {int(c):,} requests"
        for v, c in zip(versions, counts, strict=True)
    )
    calibration = "; ".join(
        f"{version_label(c.version, data.active_version_id)}: ECE {c.ece:.3f} over "
        f"{int(c.count.sum()):,} rated answers"
        for c in curves
    )
    unit = data.cost_unit
    return [
        ("tenant", f"{scope.tenant} (alpha {scope.alpha:g}, V {data.router_settings.v:g})"),
        ("scope", scope.describe()),
        (
            "routed requests",
            f"{series.n:,} ({int(series.failed.sum()):,} failed, "
            f"{int(series.explored.sum()):,} explored = {series.explored.mean():.1%})",
        ),
        ("satisfaction", satisfaction),
        (
            "cost",
            f"{total_cost:,.1f} {unit}: served answers {served_cost:,.1f} {unit}, "
            f"exploration extras {total_cost - served_cost:,.1f} {unit}",
        ),
        ("decided by", decided_by),
        (
            "active predictor now",
            "none (base rates)"
            if data.active_version_id is None
            else f"version {data.active_version_id}",
        ),
        ("calibration", calibration or "no rated answers yet"),
        ("generated", data.generated_at.strftime("%Y-%m-%d %H:%M:%S UTC")),
    ]


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { padding: 0.25em 0.8em; border-bottom: 1px solid #ddd; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.total td { font-weight: bold; border-top: 2px solid #888; }
dl { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1em; }
dt { font-weight: bold; }
figure { margin: 2em 0; }
img { max-width: 100%; border: 1px solid #eee; }
figcaption { max-width: 60em; color: #444; }
.nowrap { white-space: nowrap; }
"""


def render_html(data: ReportData, curves: Sequence[CalibrationCurve]) -> str:
    """index.html: summary, the per-model table, then each plot with how to read it."""
    e = html.escape
    unit = e(data.cost_unit)
    summary = "\n".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in _summary(data, curves))
    header = "".join(f"<th>{e(c)}{f' [{unit}]' if c == 'cost' else ''}</th>" for c in TABLE_COLUMNS)
    *per_model, total = _table_rows(data.table)
    rows = [
        f"<tr{css}><td>{e(name)}</td>"
        f'<td class="n">{requests:,}</td><td class="n">{_share(share)}</td>'
        f'<td class="n">{cost:,.3f}</td><td class="n">{rated:,}</td>'
        f'<td class="n">{satisfied:,}</td><td class="n">{_ratio(satisfaction)}</td></tr>'
        for css, (name, requests, share, cost, rated, satisfied, satisfaction) in [
            *(("", row) for row in per_model),
            (' class="total"', total),
        ]
    ]
    figures = "\n".join(
        f'<figure><img src="{e(name)}" alt="{e(title)}">'
        f"<figcaption><b>{e(title)}.</b> {e(caption)}</figcaption></figure>"
        for name, (title, caption) in PLOTS.items()
    )
    title = f"messplus report: {data.scope.tenant}, {data.scope.describe()}"
    # A browser breaks lines at the hyphens of an ISO time: keep each time whole.
    heading = _ISO_TIME.sub(r'<span class="nowrap">\g<0></span>', e(title))
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{e(title)}</title>
<style>{_STYLE}</style>
</head>
<body>
<h1>{heading}</h1>
<dl>
{summary}
</dl>
<h2>Per model</h2>
<p>Requests and share: requests each model served (explored requests are served by the
most capable model). Cost: every answer of the model, explored ones included. Rated,
satisfied, satisfaction: ratings of the answers each model served. Also as
<a href="table.csv">table.csv</a>.</p>
<table>
<thead><tr>{header}</tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody>
</table>
<h2>Plots</h2>
{figures}
</body>
</html>
"""
