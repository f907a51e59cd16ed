"""The web form's hardware-aware goals and the dashboard's hypervolume section (issue 15)."""

from __future__ import annotations

import re

import pytest

from searches.models import SearchInstance
from tests.frontend.factories import make_search, make_space, post_search_form


@pytest.fixture
def space(users):
    return make_space(users["owner"], n=40)


def _post(client, space, **fields):
    table = "index,hi,energy\n" + "".join(f"{i},{50 + i / 2},{i}\n" for i in range(40))
    return post_search_form(client, space, table, **fields)


def test_the_form_offers_objectives_constraints_and_a_reference_point(owner_client, space) -> None:
    page = owner_client.get(f"/searches/new/?space={space.id}").content.decode()
    for name in ("objectives", "constraints", "reference_point"):
        assert f'name="{name}"' in page, name


def test_a_search_with_objectives_and_a_constraint_starts_from_the_form(owner_client, space, users) -> None:
    response = _post(owner_client, space, objectives="hi:max, latency:min", constraints="energy <= 30",
                     reference_point="hi=40")
    assert response.status_code == 302, response.content.decode()[:2000]
    search = SearchInstance.objects.get(owner=users["owner"])
    assert search.objectives == [["hi", "max"], ["latency", "min"]]
    assert search.constraints == [{"name": "energy", "op": "<=", "bound": 30.0}]
    assert search.reference_point == {"hi": 40.0}
    page = owner_client.get(f"/searches/{search.id}/").content.decode()
    assert 'id="hv-chart"' in page and 'id="front-chart"' in page and "frontend/hardware.js" in page
    assert "energy &lt;= 30" in page


def test_a_bad_constraint_is_shown_next_to_its_field(owner_client, space, users) -> None:
    page = _post(owner_client, space, constraints="energy is small").content.decode()
    match = re.search(r'<p class="field-error" id="id_constraints_error">([^<]*)', page)
    assert match and "metric &lt;= bound" in match.group(1)
    assert not SearchInstance.objects.filter(owner=users["owner"]).exists()


def test_a_single_objective_dashboard_has_no_hypervolume_section(owner_client, space, users) -> None:
    search = make_search(users["owner"], space)
    page = owner_client.get(f"/searches/{search.id}/").content.decode()
    assert 'id="hv-chart"' not in page and "hardware.js" not in page


def test_cloning_keeps_objectives_constraints_and_reference(owner_client, space, users) -> None:
    _post(owner_client, space, objectives="hi:max, latency:min", constraints="energy <= 30", reference_point="hi=40")
    original = SearchInstance.objects.get(owner=users["owner"])
    page = owner_client.get(f"/searches/new/?clone={original.id}").content.decode()
    assert 'value="hi:max, latency:min"' in page and 'value="energy &lt;= 30"' in page and 'value="hi=40"' in page
    from searches import services

    copy = services.search_clone(search=original, owner=users["owner"])
    assert (copy.objectives, copy.constraints, copy.reference_point) == (
        original.objectives, original.constraints, original.reference_point)
