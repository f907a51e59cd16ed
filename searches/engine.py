"""The web app's one doorway into ``nastune`` for searches: build or restore the engine's
``SearchInstance`` from the stored state, tell it results, ask it for proposals."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nasweb.filecache import FileCache
from searches.models import SearchInstance
from spaces.engine import finite_or_none, load_space


@dataclass(frozen=True)
class Proposal:
    index: int
    fidelity: str
    predicted_mean: float | None
    predicted_std: float | None


def engine_for(search: SearchInstance) -> Any:
    """The engine's search, restored from ``search.engine_state`` (or new on the first step)."""
    from nastune import SearchInstance as EngineSearch

    space = load_space(search.space)
    options = {
        "hi_fi_cost": search.hi_fi_cost,
        "lo_fi_cost": search.lo_fi_cost,
        "acquisition": search.acquisition,
        "batch_size": search.parallelism,
        "eval_budget": search.budget,
    }
    # The web app keeps the engine's state in the database (save_filename=None: memory only).
    if search.engine_state:
        return EngineSearch.from_state(search.engine_state, space, save_filename=None, progress=False, **options)
    return EngineSearch(search.name, None, search_space=space, seed=search.seed, progress=False, **options)


def tell(engine: Any, *, index: int, fidelity: str, value: float | None, error: str | None, cost_units: float,
         hi_fi_cost: float, duration_s: float | None) -> None:
    """``cost_units`` is in hi-fi evaluations (the web's unit); the engine takes the raw cost."""
    engine.tell(index, fidelity, value, error=error, cost=cost_units * hi_fi_cost, duration_s=duration_s)


def ask(engine: Any, n: int) -> list[Proposal]:
    proposals = engine.ask(n)
    return [
        Proposal(
            index=int(p.index), fidelity=str(p.fidelity),
            predicted_mean=finite_or_none(p.predicted_mean),
            predicted_std=finite_or_none(p.predicted_std),
        )
        for p in proposals
    ]


def state_of(engine: Any) -> dict:
    return engine.to_state()


def withdraw(engine: Any, proposal: Proposal) -> None:
    """The engine stops waiting for a proposal that will not run."""
    engine.cancel(proposal.index, proposal.fidelity)


def _fitted_model(engine: Any) -> Any:
    # The surrogate the engine fine-tuned for its last proposals (with a batch in flight it also holds
    # the Kriging believer's stand-in values for them); None before the first fit.
    model = getattr(engine, "_model", None)
    return model if model is not None and model.is_fitted else None


def surrogate_checkpoint(engine: Any) -> bytes | None:
    """The fine-tuned surrogate as safetensors bytes (its config as JSON metadata), or None."""
    from safetensors.torch import save

    model = _fitted_model(engine)
    if model is None:
        return None
    tensors = {name: tensor.contiguous() for name, tensor in model.state_dict().items()}
    return save(tensors, metadata={"config": json.dumps(model.config())})


def _load_checkpoint(search: SearchInstance) -> Any:
    from safetensors import safe_open

    from nastune.surrogate import DeepEnsemble

    def load(path: Path) -> DeepEnsemble:
        with safe_open(str(path), framework="pt") as handle:
            config = json.loads(handle.metadata()["config"])
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
        return DeepEnsemble.from_state(config, tensors)

    return _checkpoints.get(search.surrogate_checkpoint.path, load)


_checkpoints: FileCache[Any] = FileCache(size=8)


def predict(search: SearchInstance, indices: list[int]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The surrogate's belief for these candidates: the objective per fidelity from the search's
    fine-tuned surrogate (when it has one), and the profiled metrics from the pretrained one."""
    space = load_space(search.space)
    if not (search.surrogate_checkpoint and Path(search.surrogate_checkpoint.path).exists()):
        # No stored fine-tuned surrogate yet (the engine was still in its initial design): fit one now.
        return engine_for(search).predict(indices) if search.engine_state else space.predict(indices)
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if space.surrogate is not None:
        out.update(space.predict(indices))
    model = _load_checkpoint(search)
    features = space.features[np.asarray(indices, dtype=np.int64)]
    for fidelity in ("hi", "lo"):
        if fidelity in model.objective_transforms:
            out[fidelity] = model.predict(features, fidelity)
    return out

