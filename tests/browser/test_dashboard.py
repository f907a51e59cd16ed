"""The dashboard in real headless Chromium against a live server and a real Celery worker.

One long journey of a new user (upload a tiny torch space -> ready -> tabular search with a live
curve -> pause/resume -> bundle download and re-import -> CSV export checked against the API), and
a few short checks: an inline upload error, isolation between users, a phone-sized screen.
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import PHONE

pytestmark = pytest.mark.browser

TINY_MODULE = '''"""A tiny conv space: width x depth x activation on 8x8 images."""
from torch import nn


def encoding_to_net(encoding):
    width, depth, activation = encoding
    act = nn.ReLU if activation == "relu" else nn.Tanh
    layers = [nn.Conv2d(3, width, 3, padding=1), act()]
    for _ in range(depth - 1):
        layers += [nn.Conv2d(width, width, 3, padding=1), act()]
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 10)]
    return nn.Sequential(*layers)
'''
ENCODINGS = [[width, depth, act] for width in (4, 6, 8, 12, 16, 24) for depth in (1, 2, 3) for act in ("relu", "tanh")]


def _table_csv() -> str:
    """index,hi: a made-up accuracy that prefers wide, deep ReLU nets (every value known: tabular)."""
    rows = ["index,hi"]
    for index, (width, depth, act) in enumerate(ENCODINGS):
        rows.append(f"{index},{50 + width + 3 * depth + (4 if act == 'relu' else 0) + (index % 5) * 0.1:.2f}")
    return "\n".join(rows) + "\n"


def _new_user(username: str) -> tuple[str, str]:
    from django.contrib.auth import get_user_model

    password = f"{username}-Pass-9182"
    get_user_model().objects.create_user(username, password=password)
    return username, password


def _wait_until(condition: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _chart_points(page: Any) -> int:
    return int(page.locator("#curve-chart").get_attribute("data-points") or 0)


@pytest.mark.slow
def test_new_user_uploads_a_space_runs_a_live_search_and_shares_the_bundle(
        open_session, start_worker, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    from searches.models import SearchInstance
    from spaces.models import SearchSpace

    worker = start_worker(queues="profile,pretrain,search,gpu")
    user = open_session()
    page = user.page
    user.log_in(*_new_user("newcomer"))
    expect(page.get_by_text("No searches yet")).to_be_visible()
    user.shoot("home-empty")

    # --- a space from an uploaded module and encodings file --------------------------------------
    (tmp_path / "encodings.json").write_text(json.dumps(ENCODINGS))
    (tmp_path / "tiny_net.py").write_text(TINY_MODULE)
    page.get_by_role("link", name="New space").first.click()
    page.get_by_label("Name", exact=True).first.fill("tiny conv")
    page.get_by_label("Encodings file").set_input_files(tmp_path / "encodings.json")
    page.get_by_label("encoding_to_net module (.py)").set_input_files(tmp_path / "tiny_net.py")
    page.get_by_label("Sample input shape").fill("1,3,8,8")
    user.shoot("new-space")
    page.get_by_role("button", name="Create space").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("tiny conv")
    space = SearchSpace.objects.get(owner__username="newcomer")
    assert page.url.endswith(f"/spaces/{space.id}/")

    # the page follows validation -> profiling -> pretraining on its own and reloads when ready
    expect(page.locator("#space-state")).to_have_text("ready", timeout=300_000)
    expect(page.locator("#profile-chart .main-svg").first).to_be_visible()
    expect(page.locator("#quality-chart .main-svg").first).to_be_visible()
    expect(page.locator(".source")).to_contain_text("def encoding_to_net(encoding):")
    user.shoot("space-ready")

    # --- a tabular search, watched live ----------------------------------------------------------
    (tmp_path / "table.csv").write_text(_table_csv())
    page.get_by_role("link", name="New search on this space").click()
    page.get_by_label("Tabular lookup (CSV)").check()
    expect(page.get_by_label("Dataset")).to_be_hidden()  # only the chosen evaluator's settings show
    page.get_by_label("Table (CSV)").set_input_files(tmp_path / "table.csv")
    page.get_by_label("Delay per lookup (s)").fill("0.6")
    page.get_by_label("Budget").fill("8")
    page.get_by_label("Name").fill("live tabular")
    user.shoot("new-search")
    page.get_by_role("button", name="Start search").click()
    search = _wait_until(lambda: SearchInstance.objects.filter(name="live tabular").first(), 20, "the search row")
    page.wait_for_url(re.compile(rf"/searches/{search.id}/$"))
    page.evaluate("window.__sameDocument = true")

    # new points reach the chart within 2 s of the evaluation finishing, without a reload
    for _ in range(2):
        seen = _chart_points(page)
        done = _wait_until(
            lambda seen=seen: search.evaluations.filter(state="done", seq__isnull=False).count() > seen and
            search.evaluations.filter(state="done", seq__isnull=False).count(), 180, "an evaluation to finish")
        # counted on the drawn chart: one marker per high-fidelity value
        page.wait_for_function(f"document.querySelectorAll('#curve-chart .scatterlayer .point').length >= {done}",
                               timeout=2_000)
    assert page.evaluate("window.__sameDocument") is True
    expect(page.locator("#finished-count")).not_to_have_text("0")
    user.shoot("dashboard-live")

    # --- pause and resume --------------------------------------------------------------------------
    page.get_by_role("button", name="Pause").click()
    expect(page.locator("#search-state")).to_have_text("paused")
    expect(page.get_by_text("Search paused.")).to_be_visible()
    search.refresh_from_db()
    assert search.state == "paused"
    # evaluations in flight finish; nothing new is proposed while paused
    _wait_until(lambda: not search.evaluations.filter(state__in=("queued", "running")).exists(), 60,
                "the evaluation in flight to finish")
    count_paused = search.evaluations.count()
    # The last evaluation's finish enqueued a search step; once it has run, it had its chance to propose.
    last = search.evaluations.exclude(finished_at=None).latest("finished_at")
    _wait_until(lambda: worker.task_succeeded_after("searches.step", last.task_id), 60,
                "the search step after the last evaluation")
    assert search.evaluations.count() == count_paused
    page.get_by_role("button", name="Resume").click()
    expect(page.locator("#search-state")).to_have_text(re.compile("running|finished"))
    expect(page.locator("#search-state")).to_have_text("finished", timeout=300_000)
    expect(page.get_by_role("progressbar", name="Budget spent")).to_have_attribute("aria-valuenow", "100")
    user.shoot("dashboard-finished")

    # the table pages on the server; a row opens to show its encoding and the built network
    page.locator("#evaluations-table button[data-expand]").first.click()
    detail = page.locator("#evaluations-table tr.detail:not([hidden])")
    expect(detail.locator("[data-part=encoding]")).to_have_text(re.compile(r'^\[\d+,\d+,"(relu|tanh)"\]$'))
    detail.get_by_role("button", name="Build network summary").click()
    expect(detail.locator("[data-part=network]")).to_contain_text("Conv2d", timeout=120_000)
    page.locator("#evaluations-table button[data-expand]").first.click()  # closed: the table is current again
    expect(page.locator("#evaluations-table tbody .badge", has_text="running")).to_have_count(0)
    expect(page.locator("#evaluations-table")).to_contain_text(f"of {search.evaluations.count()}")
    page.evaluate("window.__sameDocument = 'sorting'")
    # sort by encoding index, in place (the index column is "Candidate" next to one column per position)
    page.get_by_role("link", name="Candidate", exact=True).click()
    expect(page.locator("#evaluations-table th[aria-sort=descending]")).to_contain_text("Candidate")
    assert page.evaluate("window.__sameDocument") == "sorting"
    assert "ordering=-encoding_index" in page.url  # the address keeps the table's state

    # --- CSV export, checked against the API ---------------------------------------------------------
    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    api = page.request.get(f"{user.base_url}/api/searches/{search.id}/evaluations/?ordering=id&page_size=500").json()
    assert api["count"] == len(rows) == search.evaluations.count() >= 8
    for row, item in zip(rows, api["results"], strict=True):
        assert int(row["evaluation_id"]) == item["id"]
        assert (int(row["encoding_index"]), row["fidelity"], row["state"]) == \
            (item["encoding_index"], item["fidelity"], item["state"])
        assert json.loads(row["encoding"]) == ENCODINGS[item["encoding_index"]]
        assert (float(row["value"]) if row["value"] else None) == item["value"]
    best = max(float(row["value"]) for row in rows if row["state"] == "done" and row["fidelity"] == "hi")
    search.refresh_from_db()
    assert best == search.best_value

    # --- the comparison view overlays the exact random-search reference --------------------------------
    page.get_by_role("link", name="Compare", exact=True).last.click()
    expect(page.locator("#compare-chart")).to_have_attribute("data-traces", "2")
    user.shoot("compare")

    # --- download the bundle and import it as a second space ------------------------------------------
    user.goto(f"/spaces/{space.id}/")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download bundle").click()
    bundle = tmp_path / "shared.nastune"
    download.value.save_as(bundle)
    assert download.value.suggested_filename == "tiny conv.nastune"
    user.goto("/spaces/new/")
    page.get_by_role("tab", name="Import a bundle").click()
    page.get_by_label("Bundle file (.nastune)").set_input_files(bundle)
    page.locator("#panel-bundle").get_by_label("Name").fill("tiny conv, imported")
    page.get_by_role("button", name="Import bundle").click()
    expect(page.locator("#space-state")).to_have_text("ready")  # a bundle needs no profiling
    expect(page.locator(".source")).to_contain_text("def encoding_to_net(encoding):")
    imported = SearchSpace.objects.get(name="tiny conv, imported")
    assert imported.n_encodings == len(ENCODINGS) and imported.module_sha256 == space.module_sha256
    user.goto("/")
    expect(page.locator("[data-spark] .main-svg").first).to_be_visible()
    user.shoot("home")

    assert user.console_errors == []


def test_ragged_encodings_file_is_refused_next_to_the_field(open_session, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    user = open_session()
    page = user.page
    user.log_in(*_new_user("ragged"))
    (tmp_path / "ragged.csv").write_text("4,1,relu\n8,2\n16,3,tanh\n")
    user.goto("/spaces/new/")
    page.get_by_label("Name", exact=True).first.fill("ragged")
    page.get_by_label("Encodings file").set_input_files(tmp_path / "ragged.csv")
    page.get_by_label("…or paste the module source").fill(TINY_MODULE)
    page.get_by_label("Sample input shape").fill("1,3,8,8")
    page.get_by_role("button", name="Create space").click()
    field = page.get_by_label("Encodings file")
    expect(field).to_have_attribute("aria-invalid", "true")
    error = page.locator("#id_upload-encodings_error")
    expect(error).to_contain_text("encoding 1 has length 2")
    assert "id_upload-encodings_error" in (field.get_attribute("aria-describedby") or "")
    # the error sits right under its own field, and what was typed is kept
    field_box, error_box = field.bounding_box(), error.bounding_box()
    assert 0 <= error_box["y"] - (field_box["y"] + field_box["height"]) < 60
    expect(page.get_by_label("Name", exact=True).first).to_have_value("ragged")
    user.shoot("ragged")
    assert user.console_errors == []


def test_another_user_cannot_open_the_first_users_dashboard(open_session, users) -> None:
    from playwright.sync_api import expect

    from tests.frontend.factories import make_search, make_space

    search = make_search(users["owner"], make_space(users["owner"]), name="owner's secret search", n_evaluations=12)
    owner = open_session()
    owner.log_in("owner", "owner-pass-123")
    owner.goto(f"/searches/{search.id}/")
    expect(owner.page.get_by_role("heading", level=1)).to_contain_text("owner's secret search")

    outsider = open_session()
    outsider.log_in("outsider", "outsider-pass-123")
    response = outsider.goto(f"/searches/{search.id}/")
    assert response.status == 404
    expect(outsider.page.get_by_role("heading", level=1)).to_have_text("Not found")
    assert "secret" not in outsider.page.content()
    api = outsider.page.request.get(f"{outsider.base_url}/api/searches/{search.id}/progress/")
    assert api.status == 404
    assert owner.console_errors == []


def test_pages_fit_a_phone_and_the_form_is_reachable_by_keyboard(open_session, users) -> None:
    from playwright.sync_api import expect

    from tests.frontend.factories import make_search, make_space

    space = make_space(users["owner"])
    search = make_search(users["owner"], space, n_evaluations=40, lo_every=4, failed_every=9, in_flight=1)
    phone = open_session(PHONE)
    phone.log_in("owner", "owner-pass-123")
    for path in ("/", "/spaces/", f"/spaces/{space.id}/", f"/searches/{search.id}/", "/spaces/new/",
                 f"/searches/new/?space={space.id}", f"/searches/compare/?ids={search.id}"):
        phone.goto(path)
        phone.page.wait_for_load_state("networkidle")
        width = phone.page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{path} is {width} px wide on a {PHONE['width']} px screen"
        phone.shoot(re.sub(r"\W+", "_", path))
    expect(phone.page.locator("#compare-chart .main-svg").first).to_be_visible()

    # keyboard only: Tab from the top of the new-space form reaches every field and the button
    phone.goto("/spaces/new/")
    reached = []
    for _ in range(40):
        phone.page.keyboard.press("Tab")
        reached.append(phone.page.evaluate("document.activeElement.id || document.activeElement.textContent.trim()"))
        if reached[-1] == "Create space":
            break
    for field_id in ("id_upload-name", "id_upload-encodings", "id_upload-module", "id_upload-module_source",
                     "id_upload-sample_input_shape"):
        assert field_id in reached, f"{field_id} is not reachable with Tab: {reached}"
    assert reached[-1] == "Create space"
    assert phone.console_errors == []
