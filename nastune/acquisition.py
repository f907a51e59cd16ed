"""Acquisition functions over ensemble predictions, and batch proposals without duplicates.

An acquisition scores every candidate from the members' predictions ``samples: (M, n)`` (standardised
objective, maximised) and the best observed value ``best`` (same units). Implementations:

* :class:`UpperConfidenceBound` (``"ucb"``, default): ``mean + beta * std``.
* :class:`ExpectedImprovement` (``"ei"``): Gaussian EI with the surrogate's mean and std.
* :class:`ThompsonSampling` (``"thompson"``): the prediction of one member drawn at random.

:func:`select_batch` turns scores into ``q`` distinct candidates. Thompson batches draw a member per
slot; EI and UCB use the *Kriging believer*: after each pick the caller's ``refit`` pretends the picked
candidate returned its predicted mean, refits, and the next pick is scored on the updated ensemble
(candidates already picked, evaluated or in flight are never proposed again).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.special import ndtr

from nastune.errors import SearchError

__all__ = [
    "ACQUISITIONS",
    "DEFAULT_ACQUISITION",
    "Acquisition",
    "ExpectedImprovement",
    "ThompsonSampling",
    "UpperConfidenceBound",
    "make_acquisition",
    "select_batch",
]

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


class Acquisition(ABC):
    """Contract: score candidates from ensemble predictions; higher is better.

    Subclasses set :attr:`name` and implement :meth:`score`. ``believer`` says whether batch proposals
    need a Kriging-believer refit between picks (``False`` when each pick is random by itself).
    """

    name: str = "acquisition"
    believer: bool = True

    @abstractmethod
    def score(self, samples: np.ndarray, best: float, rng: np.random.Generator) -> np.ndarray:
        """Score every candidate.

        Args:
            samples: ``(M, n)`` member predictions of the (standardised, maximised) objective.
            best: best observed value in the same units (``-inf`` when nothing is observed).
            rng: random generator (used by randomised acquisitions).

        Returns:
            ``(n,)`` float64 scores.
        """

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _mean_std(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(samples, dtype=np.float64)
    if s.ndim != 2:
        raise SearchError(f"samples must be (M, n) member predictions, got shape {s.shape}")
    return s.mean(0), s.std(0)


class ExpectedImprovement(Acquisition):
    """Expected improvement over ``best + xi`` under ``N(mean, std^2)`` of the ensemble.

    Args:
        xi: minimum improvement that counts (standardised units).
        min_std: floor of the std so a collapsed ensemble still ranks by mean.
    """

    name = "ei"

    def __init__(self, xi: float = 0.0, min_std: float = 1e-6) -> None:
        self.xi = float(xi)
        self.min_std = float(min_std)

    def score(self, samples: np.ndarray, best: float, rng: np.random.Generator) -> np.ndarray:
        mean, std = _mean_std(samples)
        if not np.isfinite(best):
            return mean + std
        std = np.maximum(std, self.min_std)
        diff = mean - best - self.xi
        z = diff / std
        return diff * ndtr(z) + std * _INV_SQRT_2PI * np.exp(-0.5 * z * z)


class UpperConfidenceBound(Acquisition):
    """``mean + beta * std`` of the ensemble.

    Args:
        beta: exploration weight.
    """

    name = "ucb"

    def __init__(self, beta: float = 2.0) -> None:
        self.beta = float(beta)

    def score(self, samples: np.ndarray, best: float, rng: np.random.Generator) -> np.ndarray:
        mean, std = _mean_std(samples)
        return mean + self.beta * std


class ThompsonSampling(Acquisition):
    """The prediction of one member drawn at random (a sample of the ensemble's posterior)."""

    name = "thompson"
    believer = False

    def score(self, samples: np.ndarray, best: float, rng: np.random.Generator) -> np.ndarray:
        s = np.asarray(samples, dtype=np.float64)
        if s.ndim != 2:
            raise SearchError(f"samples must be (M, n) member predictions, got shape {s.shape}")
        return s[int(rng.integers(s.shape[0]))].copy()


#: The acquisition a search uses unless told otherwise. UCB (beta 2) over EI: with the GP surrogate, on 60
#: NAS-Bench-201 tuning seeds, UCB needed 14 [5, 25] fewer evaluations to the ImageNet16-120 optimum
#: (found in 59 of 60 runs against 48) and was level on the CIFARs and on digits
#: (``benchmarks/results/nb201_hardware_notes.md``, ``benchmarks/results/nb201.md``).
DEFAULT_ACQUISITION = "ucb"

ACQUISITIONS: dict[str, type[Acquisition]] = {
    "ei": ExpectedImprovement,
    "ucb": UpperConfidenceBound,
    "thompson": ThompsonSampling,
}


def make_acquisition(acquisition: str | Acquisition, **options: Any) -> Acquisition:
    """An acquisition from its name (``"ei"``, ``"ucb"``, ``"thompson"``) or an instance (returned as is).

    Raises:
        SearchError: unknown name.
    """
    if isinstance(acquisition, Acquisition):
        return acquisition
    key = str(acquisition).lower()
    if key not in ACQUISITIONS:
        raise SearchError(f"unknown acquisition {acquisition!r}; choose one of {sorted(ACQUISITIONS)}")
    return ACQUISITIONS[key](**options)


def select_batch(
    acquisition: Acquisition,
    samples: np.ndarray,
    best: float,
    q: int,
    available: np.ndarray,
    rng: np.random.Generator,
    refit: Callable[[list[int]], np.ndarray] | None = None,
) -> list[int]:
    """Pick ``q`` distinct candidates.

    Args:
        acquisition: the scoring rule.
        samples: ``(M, n)`` member predictions (standardised).
        best: best observed standardised value.
        q: batch size.
        available: ``(n,)`` bool, candidates that may be proposed (not evaluated, not in flight).
        rng: random generator.
        refit: ``refit(picked) -> (M, n)`` new member predictions after believing that the candidates
            ``picked`` returned their predicted mean (Kriging believer); ``None`` = keep the scores.

    Returns:
        Up to ``q`` candidate indices (fewer when fewer are available), in pick order.
    """
    avail = np.asarray(available, dtype=bool).copy()
    if avail.shape != (samples.shape[1],):
        raise SearchError(f"available mask has shape {avail.shape}, expected ({samples.shape[1]},)")
    picked: list[int] = []
    current = samples
    for _ in range(int(q)):
        if not avail.any():
            break
        scores = acquisition.score(current, best, rng)
        scores = np.where(avail, scores, -np.inf)
        top = np.flatnonzero(scores == scores.max())
        choice = int(top[0] if len(top) == 1 else top[rng.integers(len(top))])
        picked.append(choice)
        avail[choice] = False
        if len(picked) < q and acquisition.believer and refit is not None and avail.any():
            current = refit(list(picked))
    return picked
