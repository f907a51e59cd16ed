"""A user plots a search's best-value curve and the exact random-search reference."""

from __future__ import annotations

import pytest

from nastune.analysis import expected_random_search_curve
from searches.models import SearchInstance
from tests.api.expect import assert_error
from tests.api.tiny import tiny_value


def test_the_curve_has_the_best_value_so_far_per_fidelity(api, make_search) -> None:
    search = make_search(n_done=10, n_failed=1)
    body = api("owner").get(f"/api/searches/{search.id}/curve/").json()
    hi = body["curves"]["hi"]
    assert hi["evaluations"] == [1, 3, 5, 7, 9]
    assert hi["best"] == [max(hi["value"][: k + 1]) for k in range(5)]
    assert body["curves"]["lo"]["evaluations"] == [2, 4, 6, 8, 10]
    assert hi["best"][-1] == search.best_value


def test_the_reference_curve_is_random_search_on_the_tabular_values(api, make_search) -> None:
    search = make_search()
    body = api("owner").get(f"/api/searches/{search.id}/reference-curve/").json()
    values = [tiny_value(i) for i in range(24)]
    assert body["n_candidates"] == 24 and body["evaluations"] == list(range(1, 9))  # budget 8
    assert body["best"] == pytest.approx(expected_random_search_curve(values, 8))
    assert body["best"][0] == pytest.approx(sum(values) / 24)


def test_a_search_that_trains_has_no_exact_reference(api, make_search) -> None:
    search = make_search(evaluator_kind=SearchInstance.EvaluatorKind.MODULE)
    assert_error(api("owner").get(f"/api/searches/{search.id}/reference-curve/"), 409, None, "tabular")
