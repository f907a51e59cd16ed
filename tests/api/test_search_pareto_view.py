"""A user compares evaluated values with a profiled cost metric and sees the non-dominated set."""

from __future__ import annotations

from searches.models import Evaluation
from tests.api.expect import assert_error


def dominated_by_another(point: dict, points: list[dict]) -> bool:
    return any(other["metric_value"] <= point["metric_value"] and other["value"] >= point["value"]
               and (other["metric_value"], other["value"]) != (point["metric_value"], point["value"])
               for other in points)


def test_points_are_the_hi_fi_values_against_params_with_the_front_flagged(api, make_search) -> None:
    search = make_search(n_done=16, n_failed=1)
    body = api("owner").get(f"/api/searches/{search.id}/pareto/").json()
    done_hi = Evaluation.objects.filter(search=search, fidelity="hi", state="done")
    assert body["metric"] == "params"
    assert sorted(p["index"] for p in body["points"]) == sorted(done_hi.values_list("encoding_index", flat=True))
    for point in body["points"]:
        assert point["non_dominated"] == (not dominated_by_another(point, body["points"])), point
    assert any(point["non_dominated"] for point in body["points"])


def test_an_evaluated_candidate_without_a_profile_is_counted_not_plotted(api, make_search) -> None:
    search = make_search(n_done=2, n_failed=0)
    Evaluation.objects.create(search=search, encoding_index=2, fidelity="hi", state="done", value=9.0, seq=3)
    body = api("owner").get(f"/api/searches/{search.id}/pareto/?metric=flops").json()
    assert body["unprofiled"] == 1 and 2 not in [p["index"] for p in body["points"]]


def test_a_metric_the_space_was_not_profiled_for_is_refused(api, make_search) -> None:
    search = make_search()
    assert_error(api("owner").get(f"/api/searches/{search.id}/pareto/?metric=latency"), 400, "metric", "flops")
