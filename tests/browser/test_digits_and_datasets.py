"""In real headless Chromium: the digits demo's real training run reaches the chart, and a dataset upload
shows a bad archive's reason (refused at once, or failed in the worker's check) on the Datasets page."""

from __future__ import annotations

from typing import Any

import pytest

from tests.datasets.archives import class_folder_files, png, zip_bytes
from tests.support.waiting import wait_until

pytestmark = pytest.mark.browser


def _new_user(username: str) -> tuple[Any, str]:
    from django.contrib.auth import get_user_model

    password = f"{username}-Pass-9182"
    return get_user_model().objects.create_user(username, password=password), password


def _zip_file(name: str, data: bytes) -> dict:
    return {"name": name, "mimeType": "application/zip", "buffer": data}


@pytest.mark.slow
def test_digits_demo_real_training_run_reaches_the_chart(open_session, start_worker) -> None:
    from playwright.sync_api import expect

    from nasweb.demo import ensure_digits_demo

    owner, password = _new_user("newcomer")
    search = ensure_digits_demo(owner, write=lambda message: None)
    assert search is not None
    start_worker(queues="search,gpu", name="digits")
    user = open_session()
    page = user.page
    user.log_in(owner.username, password)
    page.get_by_role("link", name=search.name).first.click()
    page.wait_for_url(f"**/searches/{search.id}/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Digits")
    # A real CPU training run (torchrun in the sandbox): the first point must be drawn within ~3 minutes.
    page.wait_for_function("document.querySelectorAll('#curve-chart .scatterlayer .point').length >= 1",
                           timeout=240_000)
    user.shoot("digits-chart")
    evaluation = search.evaluations.filter(state="done").first()
    assert evaluation is not None and 0 < evaluation.value <= 100
    assert "epoch" in evaluation.log_tail.lower()
    assert user.console_errors == []


def test_dataset_upload_shows_a_bad_archives_reason(open_session, start_worker) -> None:
    from playwright.sync_api import expect

    from image_datasets.models import ImageDataset

    owner, password = _new_user("uploader")
    user = open_session()
    page = user.page
    user.log_in(owner.username, password)
    page.get_by_role("link", name="Datasets").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Datasets")
    expect(page.get_by_text("No datasets yet")).to_be_visible()

    # A path leaving the archive's folder is refused at once, on the archive field; nothing is stored.
    page.get_by_label("Name").fill("escape")
    page.get_by_label("Archive").set_input_files(
        _zip_file("escape.zip", zip_bytes({**class_folder_files(), "../../escape.png": png()})))
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("#id_archive_error")).to_contain_text("leaves the archive's folder")
    expect(page.get_by_label("Name")).to_have_value("escape")  # what was typed is kept
    user.shoot("refused")
    assert not ImageDataset.objects.exists()

    # One class only passes the listing; the worker's check fails it and the page shows why on its own.
    start_worker(queues="profile", name="datasets")
    page.get_by_label("Name").fill("one class")
    page.get_by_label("Archive").set_input_files(_zip_file("cats.zip", zip_bytes(class_folder_files(("cat",)))))
    page.get_by_role("button", name="Upload").click()
    item = page.locator("[data-dataset]").first
    expect(item).to_contain_text("one class")
    expect(page.locator('[data-dataset][data-state="failed"] [data-failure]')).to_contain_text(
        "needs at least 2 classes", timeout=60_000)
    user.shoot("failed")
    dataset = wait_until(lambda: ImageDataset.objects.filter(state="failed").first(), 10, interval=0.2,
                         message="the failed dataset row")
    assert not dataset.archive  # nothing of the upload is kept
    assert user.console_errors == []
