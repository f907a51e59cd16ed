"""End to end through the REST API with real workers: upload a tiny torch space, watch it get
profiled and pretrained, run a search with an uploaded evaluator to its budget, export it."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.support.waiting import wait_until
from tests.web.test_search_flow import EVALUATOR, expected_value
from tests.web.test_space_pipeline import TINY_SOURCE, tiny_encodings


def poll(client: APIClient, url: str, done: set[str], timeout: float = 300.0) -> dict:
    last: dict = {}

    def reached() -> dict | None:
        last.update(client.get(url).json())
        return dict(last) if last["state"] in done else None

    return wait_until(reached, timeout, interval=0.5, message=lambda: f"{url} stuck in {last.get('state')}")


@pytest.mark.slow
def test_space_upload_to_finished_search_through_the_api(start_worker, users, tmp_path: Path) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=users['owner']).key}")
    start_worker(name="all", concurrency=1)

    created = client.post("/api/spaces/", {
        "name": "tiny convs", "sample_input_shape": "1,3,8,8",
        "encodings": SimpleUploadedFile("encodings.json", json.dumps(tiny_encodings()).encode()),
        "module": SimpleUploadedFile("space.py", TINY_SOURCE.encode()),
    }, format="multipart")
    assert created.status_code == 201, created.content
    space = poll(client, f"/api/spaces/{created.json()['id']}/", {"ready", "failed"})
    assert space["state"] == "ready", space
    assert space["progress_done"] == space["progress_total"] == 24
    assert {"params", "flops", "latency"} <= set(space["metrics"])

    search = client.post("/api/searches/", {
        "space": space["id"], "name": "through the API", "evaluator_kind": "module",
        "evaluator_source": EVALUATOR.format(delay=0.0), "budget": 4, "parallelism": 2, "seed": 5,
        "hi_fi_cost": 10, "lo_fi_cost": 2,
    }, format="json")
    assert search.status_code == 201, search.content
    search_id = search.json()["id"]
    final = poll(client, f"/api/searches/{search_id}/", {"finished", "failed", "cancelled"})
    assert final["state"] == "finished", final

    progress = client.get(f"/api/searches/{search_id}/progress/?cursor=0").json()
    finished = progress["finished"]
    assert [row["seq"] for row in finished] == list(range(1, len(finished) + 1))
    done = [row for row in finished if row["state"] == "done"]
    assert len({(row["encoding_index"], row["fidelity"]) for row in done}) == len(done)
    for row in done:
        assert row["value"] == pytest.approx(expected_value(row["encoding_index"], row["fidelity"]))
    assert progress["spent"] == pytest.approx(sum(row["cost"] for row in done))
    assert progress["spent"] <= 4 + 1e-9

    curve = client.get(f"/api/searches/{search_id}/curve/").json()
    hi_best = curve["curves"]["hi"]["best"]
    assert hi_best and hi_best[-1] == final["best_value"] == max(r["value"] for r in done if r["fidelity"] == "hi")

    exported = client.get(f"/api/searches/{search_id}/evaluations.csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(exported.streaming_content).decode())))
    assert len(rows) == client.get(f"/api/searches/{search_id}/evaluations/").json()["count"]

    bundle = client.get(f"/api/spaces/{space['id']}/bundle/")
    assert bundle.status_code == 200
    path = tmp_path / "tiny.nastune"
    path.write_bytes(b"".join(bundle.streaming_content))
    from nastune import load_search_space

    assert len(load_search_space(path)) == 24
