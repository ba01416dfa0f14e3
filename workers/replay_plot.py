"""The picture of a replay: is each policy above alpha, how far behind is its queue, what
does it spend. One row of panels, one line per policy (its first seed).

`pyplot` and `mark_alpha` are shared with workers.report_plots, so a replay and a live
report draw the SLA the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from router.dataset import ZooData
from router.replay import ReplayTrace

__all__ = ["mark_alpha", "plot_replay", "pyplot"]


def pyplot() -> ModuleType:
    """matplotlib.pyplot on the Agg backend: files only, no display needed (workers,
    CI and servers have none), chosen at first use rather than at import."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def mark_alpha(ax: Any, alpha: float) -> None:
    """The SLA line, and a y range around it where a miss by a point is still visible."""
    ax.axhline(alpha, color="black", ls="--", lw=1, label=f"alpha = {alpha:g}")
    ax.set_ylim(max(0.0, alpha - 0.25), min(1.0, alpha + 0.25))


def plot_replay(
    traces: Mapping[str, Sequence[ReplayTrace]], data: ZooData, alpha: float, path: Path
) -> None:
    """Write a PNG with running satisfaction vs alpha, virtual queue and cumulative cost."""
    plt = pyplot()
    fig, (sat_ax, queue_ax, cost_ax) = plt.subplots(1, 3, figsize=(17, 5), constrained_layout=True)
    steps = np.arange(1, data.n_requests + 1)
    for name, runs in traces.items():
        trace = runs[0]
        (line,) = sat_ax.plot(steps, np.cumsum(trace.satisfied) / steps, lw=1.2, label=name)
        if np.any(trace.queue):
            queue_ax.plot(steps, trace.queue, lw=1.0, color=line.get_color(), label=name)
        cost_ax.plot(steps, np.cumsum(trace.cost), lw=1.2, color=line.get_color(), label=name)
    mark_alpha(sat_ax, alpha)
    sat_ax.set(title="Running satisfaction vs SLA", xlabel="request", ylabel="share satisfied")
    queue_ax.set(title="Virtual queue Q (SLA debt)", xlabel="request", ylabel="Q")
    cost_ax.set(title="Cumulative cost", xlabel="request", ylabel=f"cost [{data.cost_unit}]")
    cost_ax.set_yscale("log")
    for ax in (sat_ax, queue_ax, cost_ax):
        ax.grid(alpha=0.3)
    sat_ax.legend(fontsize=8, loc="lower right")
    fig.suptitle(
        f"{data.name}: {data.n_requests} requests, seed {next(iter(traces.values()))[0].seed}"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
