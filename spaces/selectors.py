"""Reads of search spaces. Every read is scoped to an owner; someone else's space is "not found"."""

from __future__ import annotations

from typing import Any

import numpy as np
from django.db.models import QuerySet

from nasweb.errors import NotFoundError
from spaces.models import SearchSpace


def space_list(*, owner: Any) -> QuerySet[SearchSpace]:
    return SearchSpace.objects.filter(owner=owner).order_by("-created_at")


def space_get(*, owner: Any, space_id: Any) -> SearchSpace:
    try:
        return SearchSpace.objects.get(owner=owner, id=int(space_id))
    except (SearchSpace.DoesNotExist, ValueError, TypeError):
        raise NotFoundError(None, "no such search space") from None


def space_transfer_picks(space: SearchSpace, k: int | None) -> list[int]:
    """The first ``k`` (all when ``None``) of the best results of the searches ``space`` was pretrained on (their
    rankings interleaved, each index once): where a search on the space starts unless told otherwise."""
    from spaces.engine import interleave_rankings

    return interleave_rankings([list(t.get("best") or []) for t in space.transfers or []], limit=k)


def space_profile_points(*, space: SearchSpace, max_points: int = 5000, seed: int = 0) -> dict[str, Any]:
    """A seeded sample of profiled candidates for scatter plots: index and every metric."""
    from spaces.services import load_profile

    profile, failures = load_profile(space)
    if not profile:
        return {"indices": [], "metrics": {}, "failures": len(failures)}
    profiled = np.flatnonzero(np.any([np.isfinite(values) for values in profile.values()], axis=0))
    if len(profiled) > max_points:
        profiled = np.sort(np.random.default_rng(seed).choice(profiled, size=max_points, replace=False))
    return {
        "indices": profiled.tolist(),
        "metrics": {
            metric: [None if not np.isfinite(value) else float(value) for value in values[profiled]]
            for metric, values in profile.items()
        },
        "failures": len(failures),
    }


# --- API reads (W1) ---------------------------------------------------------------------------------


def space_encodings(*, space: SearchSpace, indices: Any) -> list[dict[str, Any]]:
    """``[{index, encoding}]`` for these encoding indices (a page of the space)."""
    from spaces.services import load_encodings

    encodings = load_encodings(space)
    return [{"index": int(index), "encoding": encodings[index]} for index in indices]


def space_predictions(*, space: SearchSpace, indices: Any) -> list[dict[str, Any]]:
    """What the space's pretrained surrogate predicts for these candidates:
    ``[{index, encoding, metrics: {metric: {mean, std}}}]`` (non-finite numbers as ``None``)."""
    from nasweb.errors import ConflictError
    from spaces import engine
    from spaces.engine import NastuneError

    if space.state != SearchSpace.State.READY or not space.bundle_file:
        raise ConflictError(None, f"the search space is {space.state}; predictions need its pretrained surrogate")
    indices = [int(index) for index in indices]
    try:
        engine_space = engine.load_space(space)
        predicted = engine_space.predict(indices) if indices else {}
    except NastuneError as exc:  # e.g. a bundle that fails its checksum: say so, do not crash
        raise ConflictError(None, str(exc)) from None
    return engine.prediction_rows(indices, engine_space.encodings, predicted, "metrics")


def network_summary_get(*, space: SearchSpace, encoding_index: int) -> Any:
    """The summary a worker built (or is building) for one encoding; "not found" until requested."""
    from spaces.models import NetworkSummary

    summary = NetworkSummary.objects.filter(space=space, encoding_index=encoding_index).first()
    if summary is None:
        raise NotFoundError(None, "no summary of this network was requested yet; POST to request one")
    return summary
