"""The web app's one doorway into ``nastune`` for searches: build or restore the engine's
``SearchInstance`` from the stored state, tell it results, ask it for proposals."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from searches.models import SearchInstance
from spaces.engine import load_space


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
            predicted_mean=_finite_or_none(getattr(p, "predicted_mean", None)),
            predicted_std=_finite_or_none(getattr(p, "predicted_std", None)),
        )
        for p in proposals
    ]


def state_of(engine: Any) -> dict:
    return engine.to_state()


def predict(search: SearchInstance, indices: list[int]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The surrogate's belief (mean, std per metric and fidelity) for these candidates."""
    if search.engine_state:
        return engine_for(search).predict(indices)
    return load_space(search.space).predict(indices)


def _finite_or_none(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if np.isfinite(number) else None
