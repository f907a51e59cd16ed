"""A user pages through what a search's surrogate predicts for the candidates."""

from __future__ import annotations

import numpy as np

from searches.models import SearchSpace
from tests.api.expect import assert_error
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
