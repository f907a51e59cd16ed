"""The evaluations table is paged, sorted and filtered on the server."""

from __future__ import annotations

import re

import pytest

from tests.frontend.factories import make_search, make_space


@pytest.fixture
def search(users):
    return make_search(users["owner"], make_space(users["owner"]), n_evaluations=60, failed_every=10, lo_every=4)


def _values(page: str) -> list[str]:
    return re.findall(r'<td class="num">([^<]*)</td>\s*<td class="num">', page)


def test_pages_of_25_with_links_that_keep_the_filters(owner_client, search) -> None:
    page = owner_client.get(f"/searches/{search.id}/evaluations/?state=done&page=2").content.decode()
    assert "Evaluations 26–50 of 54" in page
    assert 'href="?state=done&amp;ordering=-seq&amp;page=3#evaluations"' in page
    assert page.count("data-expand=") == 25


def test_sorting_by_value_both_ways(owner_client, search) -> None:
    url = f"/searches/{search.id}/evaluations/?state=done&ordering="
    descending = [float(v.replace(",", "")) for v in _values(owner_client.get(url + "-value").content.decode())]
    ascending = [float(v.replace(",", "")) for v in _values(owner_client.get(url + "value").content.decode())]
    assert descending == sorted(descending, reverse=True) and ascending == sorted(ascending)
    assert descending[0] > ascending[0]
    page = owner_client.get(url + "-value").content.decode()
    assert 'aria-sort="descending"><a href="?state=done&amp;ordering=value#evaluations"' in page


def test_filters_by_fidelity_state_and_value_range(owner_client, search) -> None:
    page = owner_client.get(f"/searches/{search.id}/evaluations/?fidelity=lo").content.decode()
    assert "of 15" in page
    page = owner_client.get(f"/searches/{search.id}/evaluations/?state=failed").content.decode()
    assert "Evaluations 1–6 of 6" in page and page.count(">Retry</button>") == 6
    page = owner_client.get(f"/searches/{search.id}/evaluations/?value_min=80&value_max=85").content.decode()
    values = [float(v) for v in _values(page)]
    assert values and all(80 <= v <= 85 for v in values)


def test_a_malformed_value_filter_is_reported_not_crashed(owner_client, search) -> None:
    response = owner_client.get(f"/searches/{search.id}/evaluations/?value_min=abc&ordering=DROP")
    assert response.status_code == 200
    assert "value min must be a number" in response.content.decode()


def test_the_dashboard_itself_accepts_the_same_query(owner_client, search) -> None:
    page = owner_client.get(f"/searches/{search.id}/?fidelity=lo&ordering=value").content.decode()
    assert "of 15" in page
    assert '<option value="lo" selected>' in page


def test_each_row_and_the_best_box_show_the_encoding_itself(owner_client, users) -> None:
    space = make_space(users["owner"])  # encodings [width, depth]: index 1 is [1, 2], index 5 is [2, 2]
    search = make_search(users["owner"], space, n_evaluations=5)
    page = owner_client.get(f"/searches/{search.id}/").content.decode()
    assert re.search(r'<code class="encoding" id="best-encoding">\[1, 2\]</code> <span class="muted">#'
                     r'<span id="best-index">1</span>', page)
    table = owner_client.get(f"/searches/{search.id}/evaluations/?ordering=seq").content.decode()
    # one column per encoding position after the candidate's index
    assert re.search(r'<th scope="col" title="encoding position 0" class="pos">p0</th>'
                     r'<th scope="col" title="encoding position 1" class="pos">p1</th>', table)
    shown = re.findall(r'<td><span class="muted">#(\d+)</span></td><td class="pos" data-position="0"><code>([^<]*)'
                       r'</code></td><td class="pos" data-position="1"><code>([^<]*)</code></td>', table)
    assert shown == [("1", "1", "2"), ("2", "1", "3"), ("3", "1", "4"), ("4", "2", "1"), ("5", "2", "2")]


def test_long_encodings_stay_one_text_column(owner_client, users) -> None:
    from frontend.views import POSITION_COLUMNS_MAX
    from tests.frontend.factories import make_long_space

    space = make_long_space(users["owner"], length=POSITION_COLUMNS_MAX + 1)
    search = make_search(users["owner"], space, n_evaluations=2)
    table = owner_client.get(f"/searches/{search.id}/evaluations/?ordering=seq").content.decode()
    assert 'class="pos"' not in table
    shown = re.findall(r'<td><code class="encoding">([^<]*)</code> <span class="muted">#(\d+)</span></td>', table)
    assert [index for _, index in shown] == ["1", "2"] and shown[0][0].count(",") == POSITION_COLUMNS_MAX
