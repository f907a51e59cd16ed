"""One contract suite for every search storage: in memory, a JSON file (the library), and the web app's
Evaluation rows. The engine driven through each gives the same history."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from nastune import SearchInstance as EngineSearch
from nastune.storage import InMemoryStorage, JSONFileStorage, SearchStorage
from searches.models import Evaluation, SearchInstance
from searches.storage import EvaluationRowStorage
from tests.api.tiny import TINY_ENCODINGS, tiny_value

KINDS = ("memory", "json", "rows")

pytestmark = pytest.mark.django_db  # the rows storage needs it; the others ignore it


@pytest.fixture
def storage_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], SearchStorage]:
    """``make()`` a fresh storage of the parametrised kind; ``make()`` again reopens the same search."""
    kind = request.param
    if kind == "memory":
        shared = InMemoryStorage()
        return lambda: shared
    if kind == "json":
        return lambda: JSONFileStorage(tmp_path / "search.json")
    make_space = request.getfixturevalue("make_space")
    users = request.getfixturevalue("users")
    search = SearchInstance.objects.create(
        uid=uuid.uuid4(), owner=users["owner"], space=make_space(), name="contract", evaluator_kind="module",
        budget=6, hi_fi_cost=10, lo_fi_cost=2, parallelism=2, seed=4)

    def reopen() -> SearchStorage:
        return EvaluationRowStorage(SearchInstance.objects.get(id=search.id))

    return reopen


def _finish_through(storage: SearchStorage, record: dict) -> None:
    """A worker's finish: the rows storage needs the evaluation to be running (claimed) first."""
    if isinstance(storage, EvaluationRowStorage):
        Evaluation.objects.filter(search_id=storage.search.id, encoding_index=record["index"],
                                  fidelity=record["fidelity"]).update(state=Evaluation.State.RUNNING)
    storage.finish(record)


def _commit(storage: SearchStorage) -> None:
    if isinstance(storage, EvaluationRowStorage):
        assert storage.commit() is not None


def _record(index: int, fidelity: str, value: float | None, units: float) -> dict:
    return {"index": index, "fidelity": fidelity, "value": value, "error": None if value is not None else "boom",
            "cost": units * 10, "budget_units": units, "duration_s": 0.5, "finished_at": None}


@pytest.mark.parametrize("storage_factory", KINDS, indirect=True)
def test_pending_then_finished_in_finishing_order(storage_factory) -> None:
    storage = storage_factory()
    storage.save_config({"name": "contract", "n_asks": 0})
    storage.create_pending([{"index": 3, "fidelity": "lo", "ask": 0, "reason": "initial"},
                            {"index": 5, "fidelity": "hi", "ask": 0, "reason": "initial"}])
    _commit(storage)
    storage = storage_factory()
    assert [(p["index"], p["fidelity"]) for p in storage.pending()] == [(3, "lo"), (5, "hi")]
    assert storage.history() == []
    _finish_through(storage, _record(5, "hi", 0.7, 1.0))
    _finish_through(storage, _record(3, "lo", 0.4, 0.2))
    storage = storage_factory()
    assert storage.pending() == []
    history = storage.history()
    assert [(r["index"], r["fidelity"], r["value"]) for r in history] == [(5, "hi", 0.7), (3, "lo", 0.4)]
    assert history[0]["ask"] == 0 and history[0]["reason"] == "initial"
    assert storage.spent() == pytest.approx(1.2)
    assert storage.incumbent("hi")["index"] == 5


@pytest.mark.parametrize("storage_factory", KINDS, indirect=True)
def test_a_failed_evaluation_is_history_without_a_value_and_never_the_incumbent(storage_factory) -> None:
    storage = storage_factory()
    storage.save_config({"name": "contract", "n_asks": 0})
    storage.create_pending([{"index": 1, "fidelity": "hi", "ask": 0, "reason": "initial"},
                            {"index": 2, "fidelity": "hi", "ask": 0, "reason": "initial"}])
    _commit(storage)
    storage = storage_factory()
    _finish_through(storage, _record(1, "hi", 0.2, 1.0))
    if isinstance(storage, EvaluationRowStorage):
        Evaluation.objects.filter(search_id=storage.search.id, encoding_index=2).update(
            state=Evaluation.State.RUNNING)
    storage.fail(_record(2, "hi", 9.9, 0.0), "out of memory")
    storage = storage_factory()
    failed = [r for r in storage.history() if r["index"] == 2]
    assert len(failed) == 1 and failed[0]["value"] is None and "out of memory" in failed[0]["error"]
    assert storage.incumbent("hi")["index"] == 1


@pytest.mark.parametrize("storage_factory", KINDS, indirect=True)
def test_a_withdrawn_proposal_is_no_longer_pending(storage_factory) -> None:
    storage = storage_factory()
    storage.save_config({"name": "contract", "n_asks": 0})
    storage.create_pending([{"index": 7, "fidelity": "hi", "ask": 0, "reason": "acquisition"}])
    assert storage.withdraw(7, "hi") is True
    assert storage.withdraw(7, "hi") is False
    _commit(storage)
    assert storage_factory().pending() == []


@pytest.mark.parametrize("storage_factory", KINDS, indirect=True)
def test_the_engine_over_any_storage_proposes_each_candidate_once_and_tracks_the_best(
        storage_factory, pretrained_bundle: Path) -> None:
    """Drive the engine ask/tell through the storage, reopening it every step as the web does."""
    from nastune import load_search_space

    space = load_search_space(pretrained_bundle)
    seen: list[tuple[int, str]] = []
    for _step in range(6):
        storage = storage_factory()
        engine = EngineSearch("contract", None, search_space=space, seed=4, hi_fi_cost=10, lo_fi_cost=2,
                              eval_budget=6, batch_size=2, progress=False, storage=storage)
        proposals = engine.ask(2)
        _commit(storage)
        storage = storage_factory()
        for p in proposals:
            seen.append((p.index, p.fidelity))
            units = 1.0 if p.fidelity == "hi" else 0.2
            _finish_through(storage, {**_record(p.index, p.fidelity, tiny_value(p.index, p.fidelity), units),
                                      "encoding": list(TINY_ENCODINGS[p.index])})
    assert len(seen) == len(set(seen)) > 6
    final = EngineSearch("contract", None, search_space=space, seed=4, hi_fi_cost=10, lo_fi_cost=2,
                         eval_budget=6, progress=False, storage=storage_factory())
    his = [(r["index"], r["value"]) for r in final.history if r["fidelity"] == "hi" and r["value"] is not None]
    assert final.best_index == max(his, key=lambda item: item[1])[0]
    assert final.spent == pytest.approx(sum(1.0 if f == "hi" else 0.2 for _, f in seen))
    curve = final.best_curve()
    assert curve["best_hi"][-1] == pytest.approx(max(v for _, v in his))
    assert np.all(np.diff([b for b in curve["best_hi"] if b is not None]) >= 0)


def test_a_batch_reaches_the_json_file_whole_at_its_end(tmp_path: Path) -> None:
    """An ask writes its proposals and its ask counter in one file write: a kill in between keeps neither."""
    path = tmp_path / "search.json"
    storage = JSONFileStorage(path)
    storage.save_config({"name": "batch", "n_asks": 0})
    with storage.batch():
        storage.create_pending([{"index": 1, "fidelity": "hi", "ask": 0, "reason": "initial"}])
        storage.save_config({"name": "batch", "n_asks": 1})
        on_disk = JSONFileStorage(path)
        assert on_disk.pending() == [] and on_disk.load_config()["n_asks"] == 0
    on_disk = JSONFileStorage(path)
    assert [p["index"] for p in on_disk.pending()] == [1] and on_disk.load_config()["n_asks"] == 1
