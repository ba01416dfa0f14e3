"""The picture of a replay: is each policy above alpha, how far behind is its queue, what
does it spend. One row of panels, one line per policy: its run with the first seed (the
title says which seeds the printed table averages), in the same colour in every panel.

`pyplot` and `mark_alpha` are shared with workers.report_plots, so a replay and a live
report draw the SLA the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from router.dataset import ZooData
from router.replay import ReplayTrace

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["draw_replay", "mark_alpha", "plot_replay", "pyplot", "replay_title", "share_limits"]

# The least y range around alpha: a miss by a point stays visible.
ALPHA_SPAN = 0.25
MARGIN = 0.02


def pyplot() -> ModuleType:
    """matplotlib.pyplot on the Agg backend: files only, no display needed (workers,
    CI and servers have none), chosen at first use rather than at import."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def share_limits(alpha: float, shares: Sequence[np.ndarray]) -> tuple[float, float]:
    """A y range for satisfaction shares: at least alpha +- ALPHA_SPAN, so that a miss by a
    point stays visible, and wide enough for every share drawn. A running share starts on
    single answers (0 or 1); a range cut to alpha +- 0.25 hid exactly those first points."""
    low, high = alpha - ALPHA_SPAN, alpha + ALPHA_SPAN
    for values in shares:
        if len(values):
            low, high = min(low, float(np.min(values))), max(high, float(np.max(values)))
    return max(low, 0.0) - MARGIN, min(high, 1.0) + MARGIN


def mark_alpha(ax: Any, alpha: float, shares: Sequence[np.ndarray]) -> None:
    """The SLA line, and a y range around it that holds every share drawn."""
    ax.axhline(alpha, color="black", ls="--", lw=1, label=f"alpha = {alpha:g}")
    ax.set_ylim(*share_limits(alpha, shares))


def plot_replay(
    traces: Mapping[str, Sequence[ReplayTrace]], data: ZooData, alpha: float, path: Path
) -> None:
    """Write a PNG with running satisfaction vs alpha, virtual queue and cumulative cost."""
    fig = draw_replay(traces, data, alpha)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    pyplot().close(fig)


def draw_replay(traces: Mapping[str, Sequence[ReplayTrace]], data: ZooData, alpha: float) -> Figure:
    """The figure plot_replay saves."""
    plt = pyplot()
    fig, (sat_ax, queue_ax, cost_ax) = plt.subplots(1, 3, figsize=(18, 5), layout="constrained")
    steps = np.arange(1, data.n_requests + 1)
    shares = []
    for name, runs in traces.items():
        trace = runs[0]
        shares.append(np.cumsum(trace.satisfied) / steps)
        (line,) = sat_ax.plot(steps, shares[-1], lw=1.2, label=name)
        if np.any(trace.queue):
            queue_ax.plot(steps, trace.queue, lw=1.0, color=line.get_color(), label=name)
        cost_ax.plot(steps, np.cumsum(trace.cost), lw=1.2, color=line.get_color(), label=name)
    mark_alpha(sat_ax, alpha, shares)
    sat_ax.set(title="Running satisfaction vs SLA", xlabel="request", ylabel="share satisfied")
    queue_ax.set(title="Virtual queue Q (SLA debt)", xlabel="request", ylabel="Q")
    cost_ax.set(title="Cumulative cost", xlabel="request", ylabel=f"cost [{data.cost_unit}]")
    cost_ax.set_yscale("log")
    for ax in (sat_ax, queue_ax, cost_ax):
        ax.grid(alpha=0.3)
    # One legend for the three panels, beside the cost panel: a policy has one colour in
    # all of them, and a legend inside the satisfaction panel hid the lines near alpha.
    handles, labels = sat_ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right center", fontsize=8)
    fig.suptitle(replay_title(traces, data))
    return fig


def replay_title(traces: Mapping[str, Sequence[ReplayTrace]], data: ZooData) -> str:
    """The data, and which run the lines show against the seeds the printed table averages."""
    seeds = sorted({run.seed for runs in traces.values() for run in runs})
    first = next(iter(traces.values()))[0].seed
    head = f"{data.name}: {data.n_requests} requests"
    if len(seeds) == 1:
        return f"{head}, seed {first}"
    return f"{head}; lines: seed {first}; the table averages seeds {', '.join(map(str, seeds))}"
