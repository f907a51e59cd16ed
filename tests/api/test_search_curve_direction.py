"""The best-value curve follows the search's direction and carries wall-clock times."""

from __future__ import annotations

from searches.models import SearchInstance


def test_a_minimising_search_curve_falls_and_shows_the_users_values(api, make_search) -> None:
    search = make_search(n_done=10, n_failed=0, n_running=0)
    SearchInstance.objects.filter(id=search.id).update(direction="minimize")
    body = api("owner").get(f"/api/searches/{search.id}/curve/").json()
    hi = body["curves"]["hi"]
    rows = search.evaluations.filter(fidelity="hi", state="done").order_by("seq")
    assert body["direction"] == "minimize"
    assert hi["value"] == [row.value for row in rows]
    assert hi["best"] == [min(hi["value"][: k + 1]) for k in range(len(hi["value"]))]


def test_curve_points_have_their_seconds_since_the_start(api, make_search) -> None:
    search = make_search(n_done=6, n_failed=0, n_running=0)
    first = search.evaluations.order_by("seq").first()
    SearchInstance.objects.filter(id=search.id).update(started_at=first.finished_at)
    hi = api("owner").get(f"/api/searches/{search.id}/curve/").json()["curves"]["hi"]
    assert hi["elapsed_s"][0] == 0.0
    assert hi["elapsed_s"] == sorted(hi["elapsed_s"]) and hi["elapsed_s"][-1] == 4.0  # rows end 1 s apart
