"""The comparison view overlays several of the user's own searches."""

from __future__ import annotations

from tests.frontend.factories import make_search, make_space


def test_compare_overlays_chosen_searches_with_one_reference_per_space(owner_client, users) -> None:
    space = make_space(users["owner"])
    with_lo = make_search(users["owner"], space, name="with low fidelity", lo_every=3, n_evaluations=20)
    without = make_search(users["owner"], space, name="high fidelity only", n_evaluations=12)
    response = owner_client.get(f"/searches/compare/?ids={with_lo.id},{without.id}")
    curves = response.context["curves"]
    assert [curve["name"] for curve in curves] == ["with low fidelity", "high fidelity only"]
    assert [curve["reference"] for curve in curves] == [True, False]  # same space: one random-search reference
    assert len(curves[1]["curves"]["hi"]["best"]) == 12
    assert 'id="compare-data"' in response.content.decode()


def test_checkbox_picks_work_without_javascript(owner_client, users) -> None:
    space = make_space(users["owner"])
    one, two = (make_search(users["owner"], space, name=f"s{i}") for i in (1, 2))
    response = owner_client.get(f"/searches/compare/?pick={one.id}&pick={two.id}")
    assert {search.id for search in response.context["chosen"]} == {one.id, two.id}


def test_someone_elses_search_is_not_shown(owner_client, outsider_client, users) -> None:
    theirs = make_search(users["outsider"], make_space(users["outsider"]), name="secret search")
    response = owner_client.get(f"/searches/compare/?ids={theirs.id}")
    page = response.content.decode()
    assert "secret search" not in page
    assert f"Not found: search {theirs.id}" in page


def test_compare_sends_what_the_regret_and_rank_views_need(owner_client, users) -> None:
    space = make_space(users["owner"])
    tabular = make_search(users["owner"], space, name="tabular", n_evaluations=6)
    other_space = make_space(users["owner"], name="other", n=16)
    other = make_search(users["owner"], other_space, name="other space", n_evaluations=4)
    response = owner_client.get(f"/searches/compare/?ids={tabular.id},{other.id}")
    curves = {curve["name"]: curve for curve in response.context["curves"]}
    assert (curves["tabular"]["n_candidates"], curves["other space"]["n_candidates"]) == (40, 16)
    assert curves["tabular"]["direction"] == "maximize"
    table = response.context["compare_tables"][str(space.id)]
    assert table == sorted(50 + (i * 37) % 41 for i in range(40))  # the factory's hi column, ascending
    page = response.content.decode()
    assert 'id="compare-tables"' in page and 'name="compare-y" value="rank"' in page
    assert 'class="data fit" id="compare-table"' in page
