"""Every dashboard page renders for its owner, and is "not found" for anyone else."""

from __future__ import annotations

import re

import pytest

from tests.frontend.factories import make_search, make_space
from tests.frontend.labels import unlabelled_controls


@pytest.fixture
def space(users):
    return make_space(users["owner"])


@pytest.fixture
def search(users, space):
    return make_search(users["owner"], space, n_evaluations=30, failed_every=7, lo_every=5, in_flight=2)


def test_anonymous_visitor_is_sent_to_log_in_from_every_page(client, space, search) -> None:
    for url in ("/", "/spaces/", "/spaces/new/", f"/spaces/{space.id}/", "/searches/new/", f"/searches/{search.id}/",
                f"/searches/{search.id}/evaluations/", "/searches/compare/"):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/accounts/login/"), url


@pytest.mark.parametrize("url", ["/", "/spaces/", "/spaces/new/", "/searches/new/", "/searches/compare/"])
def test_owner_pages_render_with_labelled_fields_and_no_cdn(owner_client, space, search, url) -> None:
    page = owner_client.get(url).content.decode()
    assert unlabelled_controls(page) == []
    assert not re.search(r'src="(https?:)?//', page), "scripts come from our own static files"


def test_home_lists_recent_searches_with_state_and_sparkline_data(owner_client, search) -> None:
    response = owner_client.get("/")
    page = response.content.decode()
    assert search.name in page
    assert 'class="badge state-running"' in page
    assert f'data-spark="{search.id}"' in page
    sparkline = response.context["sparklines"][search.id]
    assert 0 < len(sparkline["best"]) <= 60
    assert sparkline["best"] == sorted(sparkline["best"]), "best value so far never decreases"
    assert "/static/vendor/plotly.min.js" in page


def test_space_list_shows_state_and_progress(owner_client, users) -> None:
    make_space(users["owner"], name="busy space", state="profiling")
    page = owner_client.get("/spaces/").content.decode()
    assert "busy space" in page
    assert 'role="progressbar"' in page and 'aria-valuenow="50"' in page
    assert "data-live-space=" in page  # its progress is polled until ready


def test_space_detail_shows_plots_quality_source_and_bundle_link(owner_client, space) -> None:
    response = owner_client.get(f"/spaces/{space.id}/")
    page = response.content.decode()
    assert response.context["profile"]["metrics"].keys() == {"flops", "latency", "params"}
    assert len(response.context["profile"]["indices"]) == space.n_encodings  # 3 has params and flops
    assert 'id="profile-data"' in page and 'id="quality-data"' in page
    assert "τ = 0.91" in page
    assert f'href="/api/spaces/{space.id}/bundle/"' in page
    assert f'href="/searches/new/?space={space.id}"' in page
    assert '<span class="k">def</span>' in page  # highlighted on the server
    assert "/static/frontend/pygments.css" in page


def test_module_source_is_escaped_not_executed(owner_client, users) -> None:
    space = make_space(users["owner"], module_source="X = '</script><script>alert(1)</script>'\n"
                                                      "def encoding_to_net(e):\n    return None\n")
    page = owner_client.get(f"/spaces/{space.id}/").content.decode()
    assert "<script>alert(1)" not in page
    assert "&lt;/script&gt;&lt;script&gt;alert(1)" in page


def test_space_still_profiling_has_no_download_and_polls(owner_client, users) -> None:
    space = make_space(users["owner"], state="profiling")
    page = owner_client.get(f"/spaces/{space.id}/").content.decode()
    assert "/bundle/" not in page
    assert 'data-live="true"' in page
    assert 'class="current" data-step="profiling"' in page


def test_failed_space_says_why_and_where(owner_client, users) -> None:
    space = make_space(users["owner"], state="failed")
    space.failure_reason = "validation: encoding_to_net([1, 1]) raised ValueError"
    space.progress_total = 0
    space.save()
    page = owner_client.get(f"/spaces/{space.id}/").content.decode()
    assert "encoding_to_net([1, 1]) raised ValueError" in page
    assert 'class="failed" data-step="validating"' in page


def test_search_dashboard_embeds_the_curve_and_the_first_table_page(owner_client, search) -> None:
    response = owner_client.get(f"/searches/{search.id}/")
    curve = response.context["curve"]
    assert curve["cursor"] == max(curve["curves"]["hi"]["evaluations"] + curve["curves"]["lo"]["evaluations"])
    assert len(curve["curves"]["lo"]["best"]) == 6  # every 5th of 30 is lo-fi; failures are 7, 14, 21, 28
    page = response.content.decode()
    assert 'id="curve-data"' in page
    assert f'href="/api/searches/{search.id}/evaluations.csv"' in page
    assert page.count('data-expand="') == 25  # one page of 25 rows, 32 evaluations in all
    assert "Evaluations 1–25 of 32" in page


def test_other_users_objects_are_not_found(outsider_client, space, search) -> None:
    for url in (f"/spaces/{space.id}/", f"/searches/{search.id}/", f"/searches/{search.id}/evaluations/",
                f"/searches/new/?space={space.id}"):
        response = outsider_client.get(url)
        if url.startswith("/searches/new/"):
            assert space.name not in response.content.decode()
        else:
            assert response.status_code == 404, url
            assert search.name not in response.content.decode()
    for url in (f"/searches/{search.id}/pause/", f"/searches/{search.id}/cancel/", f"/spaces/{space.id}/delete/",
                f"/searches/{search.id}/delete/"):
        assert outsider_client.post(url).status_code == 404, url
    search.refresh_from_db()
    assert search.state == "running"


def test_plotly_is_served_from_our_static_files(client, db) -> None:
    from pathlib import Path

    import plotly

    response = client.get("/static/vendor/plotly.min.js")
    assert response.status_code == 200
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert body == (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_bytes()
