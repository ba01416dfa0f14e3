"""What the replay and report plots show: every satisfaction share inside the axis, one
legend naming every policy beside the cost panel, and a title naming the seeds behind it."""

from __future__ import annotations

import numpy as np
import pytest

from router.replay import replay
from router.synthetic import synthetic_zoo
from workers.replay_plot import draw_replay, pyplot, replay_title, share_limits


def test_share_limits_hold_every_share_and_at_least_alpha_plus_minus_a_quarter() -> None:
    assert share_limits(0.6, [np.array([0.55, 0.62])]) == pytest.approx((0.33, 0.87))
    # A running share starts on single answers: 1.0 and 0.0 were cut off at 0.35..0.85.
    assert share_limits(0.6, [np.array([1.0, 0.5, 0.0, 0.6])]) == pytest.approx((-0.02, 1.02))
    assert share_limits(0.9, [np.array([0.95])]) == pytest.approx((0.63, 1.02))
    assert share_limits(0.5, [np.array([])]) == pytest.approx((0.23, 0.77))


def test_a_replay_figure_names_its_policies_beside_the_cost_panel_and_its_seeds() -> None:
    data = synthetic_zoo(120, seed=0).data
    policies = ("messplus", "mix", f"single:{data.models[0]}")
    traces = {name: [replay(data, name, 0.6, seed) for seed in (0, 1, 2)] for name in policies}
    figure = draw_replay(traces, data, 0.6)
    try:
        (legend,) = figure.legends
        assert [text.get_text() for text in legend.get_texts()] == [*policies, "alpha = 0.6"]
        sat_ax, _queue_ax, cost_ax = figure.axes
        low, high = sat_ax.get_ylim()
        drawn = np.concatenate([line.get_ydata() for line in sat_ax.lines])
        assert low <= drawn.min() and drawn.max() <= high
        assert {line.get_label() for line in cost_ax.lines} == set(policies)
        assert figure.get_suptitle() == (
            f"{data.name}: 120 requests; lines: seed 0; the table averages seeds 0, 1, 2"
        )
    finally:
        pyplot().close(figure)
    assert replay_title({"mix": traces["mix"][:1]}, data) == f"{data.name}: 120 requests, seed 0"
