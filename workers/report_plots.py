"""The PNGs of `messplus report`, one figure per file, drawn with matplotlib on Agg.

Each function takes figures workers.report computed and a title (the report's caption
repeats it), so what a plot claims to show and what the page says about it never drift.
Long scopes are thinned to at most MAX_POINTS points per line: a figure 1,000 pixels wide
cannot show more, and a tenant's million requests would otherwise make rendering slow.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from workers.replay_plot import mark_alpha, pyplot

__all__ = [
    "MAX_POINTS",
    "plot_calibration",
    "plot_cost",
    "plot_model_mix",
    "plot_satisfaction",
    "plot_virtual_queue",
]

if TYPE_CHECKING:
    from router.messplus import MessPlusSettings
    from workers.report import CalibrationCurve, ModelMix

MAX_POINTS = 4_000
FIGSIZE = (9.0, 4.8)
DPI = 110


def _thinned(y: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """x = 1..len(y) and y, keeping at most MAX_POINTS evenly spread points (the last kept)."""
    x = np.arange(1, len(y) + 1)
    if len(y) <= MAX_POINTS:
        return x, y
    keep = np.unique(np.linspace(0, len(y) - 1, MAX_POINTS).astype(np.int64))
    return x[keep], y[keep]


def _save(fig: Any, ax: Any, title: str, path: Path) -> None:
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=DPI)
    pyplot().close(fig)


def plot_satisfaction(
    running: npt.NDArray[np.float64], alpha: float, title: str, path: Path
) -> None:
    """Running share satisfied after each rated served answer, against alpha."""
    fig, ax = pyplot().subplots(figsize=FIGSIZE, constrained_layout=True)
    if len(running):
        x, y = _thinned(running)
        ax.plot(x, y, lw=1.3, label=f"running satisfaction (ends {running[-1]:.3f})")
    else:
        ax.text(0.5, 0.5, "no rated answers yet", ha="center", transform=ax.transAxes)
    mark_alpha(ax, alpha, [running])
    ax.set(xlabel="rated served answers, in routing order", ylabel="share satisfied")
    ax.legend(loc="best", fontsize=9)  # clear of the line, wherever it ends
    _save(fig, ax, title, path)


def plot_virtual_queue(
    queue: npt.NDArray[np.float64], settings: MessPlusSettings, title: str, path: Path
) -> None:
    """The queue each request was decided on, with V and where a tenant's queue starts."""
    fig, ax = pyplot().subplots(figsize=FIGSIZE, constrained_layout=True)
    x, y = _thinned(queue)
    ax.plot(x, y, lw=1.1, color="tab:purple", label="queue decided on (Q + unrated debt)")
    ax.axhline(settings.v, color="black", ls="--", lw=1, label=f"V = {settings.v:g}")
    start = settings.initial_queue()
    if start != settings.v:
        ax.axhline(start, color="black", ls=":", lw=1, label=f"V + headroom = {start:g} (start)")
    # Head room above the line for the legend.
    ax.set_ylim(bottom=0, top=max(float(queue.max()), start, settings.v) * 1.3)
    ax.set(xlabel="request, in routing order", ylabel="SLA debt [answers]")
    ax.legend(loc="upper right", fontsize=9)
    _save(fig, ax, title, path)


def plot_cost(
    cost: npt.NDArray[np.float64],
    served_cost: npt.NDArray[np.float64],
    unit: str,
    title: str,
    path: Path,
) -> None:
    """Cumulative cost of every answer and of the served answers alone."""
    fig, ax = pyplot().subplots(figsize=FIGSIZE, constrained_layout=True)
    total = np.cumsum(cost)
    ax.plot(*_thinned(total), lw=1.4, label=f"all answers ({total[-1]:,.0f} {unit})")
    served = np.cumsum(served_cost)
    ax.plot(*_thinned(served), lw=1.2, ls="--", label=f"served answers ({served[-1]:,.0f} {unit})")
    ax.set_ylim(bottom=0)
    ax.set(xlabel="request, in routing order", ylabel=f"cumulative cost [{unit}]")
    ax.legend(loc="upper left", fontsize=9)
    _save(fig, ax, title, path)


def plot_model_mix(mix: ModelMix, models: Sequence[str], title: str, path: Path) -> None:
    """Stacked bars of each model's served share per window, cheapest at the bottom."""
    fig, ax = pyplot().subplots(figsize=FIGSIZE, constrained_layout=True)
    bottom = np.zeros(len(mix.starts))
    stacked = []
    for i, name in enumerate(models):
        bars = ax.bar(
            mix.starts + 1,
            mix.shares[:, i],
            width=mix.sizes,
            bottom=bottom,
            align="edge",
            color=f"C{i}",
            label=name,
        )
        stacked.append(bars)
        bottom += mix.shares[:, i]
    centres = mix.starts + 1 + mix.sizes / 2
    (explored,) = ax.plot(
        centres, mix.explored_share, color="black", lw=1.2, marker=".", label="explored"
    )
    ax.set_ylim(0, 1)
    ax.set_xlim(1, mix.starts[-1] + mix.sizes[-1] + 1)
    window = int(np.median(mix.sizes))
    ax.set(
        xlabel=f"request, in routing order (windows of about {window})",
        ylabel="share of requests served",
    )
    # Listed top to bottom as they are stacked.
    ax.legend(
        handles=[*reversed(stacked), explored],
        loc="upper left",
        bbox_to_anchor=(1.0, 1.0),
        fontsize=9,
    )
    _save(fig, ax, title, path)


def plot_calibration(
    curves: Sequence[tuple[str, CalibrationCurve]], title: str, path: Path
) -> None:
    """Observed share against predicted probability per bin, counts beside the points,
    and below it how many rated answers fell in each bin."""
    plt = pyplot()
    fig, (ax, counts_ax) = plt.subplots(
        2,
        1,
        figsize=(FIGSIZE[0], FIGSIZE[1] * 1.35),
        sharex=True,
        gridspec_kw={"height_ratios": (3, 1)},
        constrained_layout=True,
    )
    ax.plot([0, 1], [0, 1], color="grey", ls="--", lw=1, label="perfectly calibrated")
    for i, (label, curve) in enumerate(curves):
        ax.plot(
            curve.predicted,
            curve.observed,
            marker="o",
            color=f"C{i}",
            label=f"{label}: ECE {curve.ece:.3f}, n = {int(curve.count.sum()):,}",
        )
        for p, o, n in zip(curve.predicted, curve.observed, curve.count, strict=True):
            ax.annotate(f"{n}", (p, o), textcoords="offset points", xytext=(5, -11), fontsize=8)
        width = curve.bin_width / len(curves)  # side by side within each bin
        counts_ax.bar(curve.lower + i * width, curve.count, width, align="edge", color=f"C{i}")
    if not curves:
        ax.text(0.5, 0.5, "no rated answers yet", ha="center")
    ax.set(xlim=(0, 1), ylim=(-0.02, 1.02), ylabel="observed share satisfied")
    ax.legend(loc="upper left", fontsize=9)
    counts_ax.set(xlabel="predicted P(satisfied) of the served model", ylabel="rated answers")
    counts_ax.grid(alpha=0.3)
    _save(fig, ax, title, path)
