"""Dashboard extras: extend the budget, retry every failed evaluation, rename/notes/tags, clone a search's
settings into the New search form, choose the direction, the per-position section."""

from __future__ import annotations

import re

import pytest

from searches.models import Evaluation, SearchInstance
from tests.frontend.factories import make_search, make_space


@pytest.fixture
def finished(users):
    return make_search(users["owner"], make_space(users["owner"]), n_evaluations=14, failed_every=7,
                       state="finished", budget=20)


def test_extending_the_budget_of_a_finished_search_runs_it_again(owner_client, finished) -> None:
    page = owner_client.get(f"/searches/{finished.id}/").content.decode()
    assert f'action="/searches/{finished.id}/extend/"' in page and 'value="40"' in page
    response = owner_client.post(f"/searches/{finished.id}/extend/", {"budget": "40"}, follow=True)
    assert "Budget raised to 40." in response.content.decode()
    finished.refresh_from_db()
    assert (finished.budget, finished.state) == (40, "running")


def test_a_smaller_or_unreadable_budget_is_explained(owner_client, finished) -> None:
    smaller = owner_client.post(f"/searches/{finished.id}/extend/", {"budget": "5"}, follow=True).content.decode()
    assert "the new budget must be more than the current 20" in smaller
    text = owner_client.post(f"/searches/{finished.id}/extend/", {"budget": "lots"}, follow=True).content.decode()
    assert "The new budget must be a number." in text
    finished.refresh_from_db()
    assert (finished.budget, finished.state) == (20, "finished")


def test_retry_failed_queues_every_failed_evaluation(owner_client, finished) -> None:
    response = owner_client.post(f"/searches/{finished.id}/retry-failed/", follow=True)
    assert "2 failed evaluations queued again." in response.content.decode()
    assert finished.evaluations.filter(state=Evaluation.State.QUEUED).count() == 2
    finished.refresh_from_db()
    assert finished.state == "running"


def test_rename_notes_and_tags_show_on_the_dashboard(owner_client, finished) -> None:
    owner_client.post(f"/searches/{finished.id}/annotate/", {"name": "wide nets", "notes": "try lr 0.01",
                                                              "tags": "baseline, cpu"})
    page = owner_client.get(f"/searches/{finished.id}/").content.decode()
    assert "<h1>wide nets" in page
    assert '<span class="tag">baseline</span> <span class="tag">cpu</span>' in page and "try lr 0.01" in page
    refused = owner_client.post(f"/searches/{finished.id}/annotate/", {"name": " ", "notes": "", "tags": ""},
                                follow=True).content.decode()
    assert "give the search a name" in refused


def test_clone_prefills_the_new_search_form(owner_client, finished) -> None:
    SearchInstance.objects.filter(id=finished.id).update(seed=11, acquisition="ucb", direction="minimize")
    page = owner_client.get(f"/searches/{finished.id}/").content.decode()
    assert f'href="/searches/new/?clone={finished.id}"' in page
    form = owner_client.get(f"/searches/new/?clone={finished.id}").content.decode()
    assert 'id="clone-notice"' in form and "its table is used unless you upload another" in form
    assert re.search(r'name="name"[^>]*value="search one \(copy\)"', form)
    assert re.search(r'name="seed"[^>]*value="11"', form) and re.search(r'name="budget"[^>]*value="20"', form)
    assert '<option value="ucb" selected>' in form and '<option value="minimize" selected>' in form
    assert re.search(r'type="radio" name="evaluator_kind" value="tabular"[^>]*checked', form)
    assert f'name="clone_of" value="{finished.id}"' in form


def test_a_cloned_tabular_search_starts_without_uploading_the_table_again(owner_client, finished) -> None:
    response = owner_client.post("/searches/new/", {
        "space": str(finished.space_id), "name": "again", "evaluator_kind": "tabular", "budget": "6",
        "acquisition": "ei", "direction": "minimize", "clone_of": str(finished.id), "delay_s": "0"})
    assert response.status_code == 302, response.content.decode()[:3000]
    clone = SearchInstance.objects.get(name="again")
    assert clone.direction == "minimize" and clone.budget == 6
    finished.evaluator_table.open("rb")
    assert clone.evaluator_table.read() == finished.evaluator_table.read()


def test_outsider_cannot_clone_or_steer(outsider_client, finished) -> None:
    assert outsider_client.get(f"/searches/new/?clone={finished.id}").status_code == 404
    assert outsider_client.post(f"/searches/{finished.id}/extend/", {"budget": "99"}).status_code == 404
    finished.refresh_from_db()
    assert finished.budget == 20


def test_the_dashboard_has_the_per_position_views_and_a_wall_clock_axis(owner_client, finished) -> None:
    page = owner_client.get(f"/searches/{finished.id}/").content.decode()
    for element in ('id="parcoords-chart"', 'id="importance-chart"', 'id="slice-chart"', 'value="elapsed"'):
        assert element in page


def test_a_space_is_renamed_described_and_tagged_from_its_page(owner_client, outsider_client, users) -> None:
    space = make_space(users["owner"])
    owner_client.post(f"/spaces/{space.id}/annotate/", {"name": "cells", "description": "NB201-like", "tags": "a, b"})
    page = owner_client.get(f"/spaces/{space.id}/").content.decode()
    assert "<h1>cells" in page and "NB201-like" in page
    assert '<span class="tag">a</span> <span class="tag">b</span>' in page
    assert outsider_client.post(f"/spaces/{space.id}/annotate/", {"name": "mine"}).status_code == 404
    refused = owner_client.post(f"/spaces/{space.id}/annotate/", {"name": ""}, follow=True).content.decode()
    assert "give the search space a name" in refused


def test_the_api_docs_are_linked_from_every_page_and_counts_are_singular_when_one(owner_client, users) -> None:
    from tests.frontend.factories import make_long_space

    make_long_space(users["owner"], length=2, n=1)
    page = owner_client.get("/spaces/").content.decode()
    assert '<a href="/api/docs/" id="api-docs-link">API docs</a>' in page
    assert "1 encoding of length" in page and "1 encodings" not in page


def test_the_nb201_example_is_not_offered_without_its_table(owner_client, monkeypatch, tmp_path) -> None:
    assert 'value="nb201"' in owner_client.get("/spaces/new/?tab=example").content.decode()
    monkeypatch.setenv("NASWEB_NB201_CSV", str(tmp_path / "missing.csv"))
    page = owner_client.get("/spaces/new/?tab=example").content.decode()
    assert 'value="nb201"' not in page and 'value="mobileone"' in page
    refused = owner_client.post("/spaces/new/", {"form": "example", "example-example": "nb201"}).content.decode()
    assert "Select a valid choice" in refused


def test_a_minimising_search_says_so_on_its_dashboard(owner_client, finished) -> None:
    assert "higher values are better" in owner_client.get(f"/searches/{finished.id}/").content.decode()
    SearchInstance.objects.filter(id=finished.id).update(direction="minimize")
    page = owner_client.get(f"/searches/{finished.id}/").content.decode()
    assert "lower values are better" in page and "<dt>Best value (lowest)</dt>" in page
    assert '"direction": "minimize"' in page  # the curve script turns its best line and axis title
