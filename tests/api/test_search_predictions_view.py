"""A user pages through what a search's surrogate predicts for the candidates."""

from __future__ import annotations

import numpy as np
import pytest

from searches.models import SearchSpace
from tests.api.expect import assert_error
from tests.api.test_space_create import imported
from tests.api.tiny import TINY_ENCODINGS


class Engine:
    encodings = [tuple(encoding) for encoding in TINY_ENCODINGS]


def test_each_candidate_comes_with_the_objectives_mean_and_std(api, make_search, monkeypatch) -> None:
    def predict(search, indices):
        index = np.asarray(indices, dtype=float)
        return {"hi": (index / 10, np.full(len(indices), 0.2)), "lo": (index / 20, np.full(len(indices), np.inf))}

    monkeypatch.setattr("searches.engine.predict", predict)
    monkeypatch.setattr("spaces.engine.load_space", lambda space: Engine())
    search = make_search()
    body = api("owner").get(f"/api/searches/{search.id}/predictions/?page_size=4&page=2").json()
    assert body["count"] == 24
    assert body["results"][0] == {"index": 4, "encoding": TINY_ENCODINGS[4],
                                  "predictions": {"hi": {"mean": 0.4, "std": 0.2}, "lo": {"mean": 0.2, "std": None}}}


def test_without_a_pretrained_surrogate_there_are_no_predictions(api, make_search) -> None:
    search = make_search()
    SearchSpace.objects.filter(id=search.space_id).update(bundle_file="")
    assert_error(api("owner").get(f"/api/searches/{search.id}/predictions/"), 409, None, "surrogate")


@pytest.mark.slow
def test_a_running_search_predicts_the_objective_with_its_fine_tuned_surrogate(api, pretrained_bundle) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    from searches import services
    from searches.models import Evaluation
    from tests.api.tiny import tiny_value

    client = api("owner")
    space = imported(client, client.post("/api/spaces/", {
        "bundle": SimpleUploadedFile("b.nastune", pretrained_bundle.read_bytes())}, format="multipart"))
    table = "index,hi\n" + "".join(f"{i},{tiny_value(i)}\n" for i in range(24))
    search = client.post("/api/searches/", {
        "space": space["id"], "name": "lookup", "evaluator_kind": "tabular", "budget": 6, "parallelism": 3,
        "evaluator_table": SimpleUploadedFile("t.csv", table.encode())}, format="multipart").json()
    services.search_step(search_id=search["id"])  # what the search worker does; its messages are never sent here
    proposed = Evaluation.objects.filter(search_id=search["id"])
    assert proposed.count() == 3
    for seq, evaluation in enumerate(proposed, start=1):
        Evaluation.objects.filter(id=evaluation.id).update(state="done", value=tiny_value(evaluation.encoding_index),
                                                           cost=1.0, seq=seq)
    services.search_step(search_id=search["id"])  # tells the three results
    body = client.get(f"/api/searches/{search['id']}/predictions/?page_size=24").json()
    assert len(body["results"]) == 24
    assert {"hi", "params"} <= set(body["results"][0]["predictions"])
