"""One typed SearchSpec: its defaults are the form's and the API's, its checks the same for every caller."""

from __future__ import annotations

import math

import pytest

from frontend.forms import SearchForm
from searches.api import SearchListApi
from searches.spec import DEFAULTS, SUGGESTIONS, SearchSpec, SearchValidationError


def spec(**fields: object) -> SearchSpec:
    return SearchSpec(**{"name": "run", "evaluator_kind": "module", "budget": 10, **fields})  # type: ignore[arg-type]


def refusal(**fields: object) -> tuple[str | None, str]:
    with pytest.raises(SearchValidationError) as caught:
        spec(**fields).checked()
    return caught.value.field, caught.value.reason


def test_a_checked_spec_has_its_name_stripped_and_its_numbers_typed() -> None:
    checked = spec(name="  run 1 ", budget=3, hi_fi_cost=240, lo_fi_cost=12, parallelism=4.0, seed=7).checked()
    assert (checked.name, checked.budget, checked.hi_fi_cost, checked.lo_fi_cost) == ("run 1", 3.0, 240.0, 12.0)
    assert (checked.parallelism, checked.seed) == (4, 7)
    assert type(checked.parallelism) is int and type(checked.budget) is float


@pytest.mark.parametrize(("fields", "expected"), [
    ({"budget": 0}, ("budget", "must be more than 0 and at most 1e+06")),
    ({"budget": math.nan}, ("budget", "must be more than 0 and at most 1e+06")),
    ({"budget": math.inf}, ("budget", "must be more than 0 and at most 1e+06")),
    ({"budget": "10"}, ("budget", "must be a number")),  # typed input: parsing is the front door's job
    ({"budget": True}, ("budget", "must be a number")),
    ({"parallelism": 1.5}, ("parallelism", "must be an integer")),
    ({"seed": -1}, ("seed", "must be at least 0 and at most 2.14748e+09")),
    ({"hi_fi_cost": 10, "lo_fi_cost": 10}, ("lo_fi_cost", "the low fidelity must cost less than the high fidelity")),
    ({"acquisition": "greedy"}, ("acquisition", "choose one of ucb, ei, thompson")),
    ({"surrogate": "forest"}, ("surrogate", "choose one of gp, ensemble")),
    ({"name": " "}, ("name", "give the search a name of at most 120 characters")),
    ({"evaluator_module": "def evaluate(e, f):\n    return 1\n", "evaluator_source": "x = 1"},
     ("evaluator_module", "give either an evaluator module file or evaluator_source")),
])
def test_each_bad_value_is_refused_on_its_field(fields: dict, expected: tuple[str, str]) -> None:
    assert refusal(**fields) == expected


def test_the_api_defaults_are_the_specs() -> None:
    fields = SearchListApi.InputSerializer().fields
    for name in ("hi_fi_cost", "lo_fi_cost", "parallelism", "seed", "acquisition", "surrogate", "direction",
                 "initial_candidates"):
        assert fields[name].default == DEFAULTS[name], name
    assert DEFAULTS == {"hi_fi_cost": 1.0, "lo_fi_cost": None, "parallelism": 1, "seed": 0, "acquisition": "ucb",
                        "surrogate": "gp", "direction": "maximize", "initial_candidates": None,
                        "evaluator_source": "", "evaluator_module": None, "evaluator_table": None}


def test_the_form_starts_from_the_specs_defaults_and_suggestions() -> None:
    form = SearchForm(spaces=[])
    shown = {name: form[name].initial for name in ("hi_fi_cost", "parallelism", "seed", "acquisition", "surrogate",
                                                     "budget", "evaluator_kind")}
    assert shown == {"hi_fi_cost": "1", "parallelism": "1", "seed": "0", "acquisition": "ucb", "surrogate": "gp",
                     "budget": "50", "evaluator_kind": SUGGESTIONS["evaluator_kind"]}
    assert form["lo_fi_cost"].initial is None
