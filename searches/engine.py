"""The searches app's one doorway into ``nastune``: the engine's search over a web search's rows
(:class:`searches.storage.EvaluationRowStorage`, on the engine's storage contract), its stored fine-tuned
surrogate, its predictions, and the engine's numbers behind the charts (curves, fronts, goals,
position importance). Nothing else in ``searches/`` imports ``nastune``; the modules imported here need
no torch, so the web process does not load it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from django.core.files.base import ContentFile

from nastune.analysis import best_curve, expected_random_search_curve, non_dominated
from nastune.errors import NastuneError, SearchError
from nastune.importance import position_importance
from nastune.objectives import Goals
from nastune.storage import SearchStorage
from nasweb.filecache import FileCache
from searches.models import SearchInstance
from spaces import engine as space_engine

__all__ = [
    "Goals",
    "NastuneError",
    "SearchError",
    "SearchStorage",
    "best_curve",
    "engine_for",
    "expected_random_search_curve",
    "non_dominated",
    "position_importance",
    "predict",
    "save_surrogate",
]


def engine_for(search: SearchInstance) -> Any:
    """The engine's search for ``search``, reading and writing its evaluations through its rows."""
    from nastune import SearchInstance as EngineSearch
    from searches.storage import EvaluationRowStorage

    return EngineSearch(search.name, None, search_space=space_engine.load_space(search.space), seed=search.seed,
                        progress=False, storage=EvaluationRowStorage(search))


def save_surrogate(search: SearchInstance, driver: Any) -> None:
    """Keep the engine's fine-tuned ensemble so predictions need no refit (safetensors, no pickle); a search
    on the default GP has none to keep (refitting it costs less than reading a file)."""
    from nastune.checkpoint import surrogate_bytes

    model = driver.fitted_surrogate
    if model is None:
        return
    if search.surrogate_checkpoint:
        search.surrogate_checkpoint.delete(save=False)
    search.surrogate_checkpoint.save("surrogate.safetensors", ContentFile(surrogate_bytes(model)), save=False)
    SearchInstance.objects.filter(id=search.id).update(surrogate_checkpoint=search.surrogate_checkpoint.name)


_checkpoints: FileCache[Any] = FileCache(size=8)


def predict(search: SearchInstance, indices: list[int]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The surrogate's belief for these candidates: the objective per fidelity from the search's
    fine-tuned surrogate (its stored one when there is one, else fitted now), and the profiled metrics
    from the pretrained one."""
    from nastune.checkpoint import load_surrogate

    driver = engine_for(search)
    stored = None
    if search.surrogate_checkpoint and Path(search.surrogate_checkpoint.path).exists():
        stored = _checkpoints.get(search.surrogate_checkpoint.path, load_surrogate)
    if stored is None and not driver.history:
        return driver.space.predict(indices)
    return driver.predict(indices, surrogate=stored)
