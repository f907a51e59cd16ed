"""Best-value curves: the plain data of a search turned into Plotly figures."""

from __future__ import annotations

import json

import pytest

from nastune import NastuneError, SearchInstance
from nastune.plots import band_figure, best_curve_figure


def test_a_search_curve_becomes_a_step_figure_with_its_evaluations(make_grid_space) -> None:
    space = make_grid_space()
    values = {}

    def hi(encoding: tuple) -> float:
        values[encoding] = float(sum(encoding))
        return values[encoding]

    s = SearchInstance("plot", None, search_space=space, hi_fi_eval=hi, seed=0, progress=False, n_initial=3)
    s.run_search(6)
    curve = s.best_curve()
    fig = best_curve_figure(curve, title="grid")
    line, points = fig.data[0], fig.data[1]
    assert list(line.x) == curve["evaluation"] and list(line.y) == curve["best_hi"]
    assert line.line.shape == "hv"
    assert list(points.y) == [e["value"] for e in s.history]
    assert fig.layout.title.text == "grid" and fig.layout.xaxis.title.text == "evaluations"
    json.loads(fig.to_json())  # serialisable for the dashboard
    by_cost = best_curve_figure(curve, x="cost")
    assert list(by_cost.data[0].x) == curve["cost"]


def test_several_curves_are_compared_in_one_figure() -> None:
    a = {"evaluation": [1, 2, 3], "cost": [1, 2, 3], "budget_units": [1, 2, 3], "best_hi": [None, 1.0, 2.0]}
    b = {"evaluation": [1, 2], "cost": [1, 2], "budget_units": [1, 2], "best_hi": [0.5, 0.5]}
    fig = best_curve_figure({"run a": a, "run b": b}, x="budget_units")
    assert [t.name for t in fig.data] == ["run a", "run b"]
    assert fig.layout.xaxis.title.text.startswith("budget spent")


def test_band_figure_draws_a_median_and_a_band_per_method() -> None:
    fig = band_figure([1, 2, 3], {"m": ([3, 2, 1], [2, 1, 0], [4, 3, 2])}, y_title="regret", log_y=True)
    assert [t.name for t in fig.data] == ["m band", "m"]
    assert list(fig.data[1].y) == [3, 2, 1] and fig.layout.yaxis.type == "log"


def test_malformed_curve_data_is_refused() -> None:
    with pytest.raises(NastuneError, match="x must be one of"):
        best_curve_figure({"evaluation": [1], "best_hi": [1.0]}, x="time")
    with pytest.raises(NastuneError, match="no 'best_hi'"):
        best_curve_figure({"evaluation": [1]})
    with pytest.raises(NastuneError, match="differ in length"):
        best_curve_figure({"evaluation": [1, 2], "best_hi": [1.0]})
    with pytest.raises(NastuneError, match="must have 2 values"):
        band_figure([1, 2], {"m": ([1], [1], [1])})
