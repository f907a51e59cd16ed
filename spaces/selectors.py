"""Reads of search spaces. Every read is scoped to an owner; someone else's space is "not found"."""

from __future__ import annotations

from typing import Any

import numpy as np
from django.db.models import QuerySet

from nasweb.api_errors import NotFoundError
from spaces.models import SearchSpace


def space_list(*, owner: Any) -> QuerySet[SearchSpace]:
    return SearchSpace.objects.filter(owner=owner).order_by("-created_at")


def space_get(*, owner: Any, space_id: Any) -> SearchSpace:
    try:
        return SearchSpace.objects.get(owner=owner, id=int(space_id))
    except (SearchSpace.DoesNotExist, ValueError, TypeError):
        raise NotFoundError(None, "no such search space") from None


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
