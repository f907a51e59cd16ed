"""A user pages through what a space's pretrained surrogate predicts for its candidates."""

from __future__ import annotations

import numpy as np

from spaces.models import SearchSpace
from tests.api.expect import assert_error
from tests.api.test_space_create import imported
from tests.api.tiny import TINY_ENCODINGS


class PretrainedSpace:
    """Stands in for ``nastune.SearchSpace`` (the surrogate itself is tested with the engine)."""

    encodings = [tuple(encoding) for encoding in TINY_ENCODINGS]

    def predict(self, indices: list[int]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        index = np.asarray(indices, dtype=float)
        std = np.full(len(indices), 0.5)
        std[index == 11] = np.nan
        return {"params": (index * 10.0, std), "latency": (index / 100, std)}


def test_each_candidate_of_the_page_comes_with_mean_and_std_per_metric(api, make_space, monkeypatch) -> None:
    monkeypatch.setattr("spaces.engine.load_space", lambda space: PretrainedSpace())
    space = make_space()
    body = api("owner").get(f"/api/spaces/{space.id}/predictions/?page=2&page_size=5").json()
    assert body["count"] == 24
    first = body["results"][0]
    assert first == {"index": 5, "encoding": TINY_ENCODINGS[5],
                     "metrics": {"params": {"mean": 50.0, "std": 0.5}, "latency": {"mean": 0.05, "std": 0.5}}}


def test_a_prediction_that_is_not_a_finite_number_comes_as_null(api, make_space, monkeypatch) -> None:
    monkeypatch.setattr("spaces.engine.load_space", lambda space: PretrainedSpace())
    space = make_space()
    body = api("owner").get(f"/api/spaces/{space.id}/predictions/?page=3&page_size=5").json()
    assert body["results"][1]["metrics"]["params"] == {"mean": 110.0, "std": None}


def test_a_space_that_is_not_pretrained_yet_has_no_predictions(api, make_space) -> None:
    space = make_space(state=SearchSpace.State.PROFILING, with_bundle=False)
    assert_error(api("owner").get(f"/api/spaces/{space.id}/predictions/"), 409, None, "profiling")


def test_a_bundle_that_cannot_be_read_is_reported_not_crashed_on(api, make_space) -> None:
    space = make_space()  # its bundle file holds a few bytes that are not a zip
    assert_error(api("owner").get(f"/api/spaces/{space.id}/predictions/"), 409, None, "not a nastune bundle")


def test_an_imported_space_predicts_with_its_real_surrogate(api, pretrained_bundle) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    client = api("owner")
    space = imported(client, client.post("/api/spaces/", {
        "bundle": SimpleUploadedFile("b.nastune", pretrained_bundle.read_bytes())}, format="multipart"))
    body = client.get(f"/api/spaces/{space['id']}/predictions/?page_size=24").json()
    assert [row["index"] for row in body["results"]] == list(range(24))
    for row in body["results"]:
        assert set(row["metrics"]) == {"params", "flops"}
        assert row["metrics"]["params"]["mean"] is not None and row["metrics"]["params"]["std"] >= 0
