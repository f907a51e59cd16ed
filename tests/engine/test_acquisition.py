"""Acquisition functions and batch proposals: one contract suite over every implementation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from nastune import ExpectedImprovement, SearchError, ThompsonSampling, UpperConfidenceBound
from nastune.acquisition import ACQUISITIONS, make_acquisition, select_batch


def samples(n: int = 50, members: int = 5, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centre = rng.normal(size=n)
    return centre[None, :] + rng.normal(scale=rng.uniform(0.05, 1.0, size=n), size=(members, n))


@pytest.mark.parametrize("name", sorted(ACQUISITIONS))
def test_every_acquisition_scores_every_candidate(name: str) -> None:
    acq = make_acquisition(name)
    s = samples()
    scores = acq.score(s, best=0.5, rng=np.random.default_rng(0))
    assert scores.shape == (50,) and np.isfinite(scores).all()


@pytest.mark.parametrize("name", sorted(ACQUISITIONS))
@pytest.mark.parametrize("q", [1, 4, 12])
def test_batches_are_distinct_and_only_from_available_candidates(name: str, q: int) -> None:
    s = samples()
    available = np.ones(50, dtype=bool)
    available[::3] = False
    refits: list[list[int]] = []

    def refit(picked: list[int]) -> np.ndarray:
        refits.append(list(picked))
        return samples(seed=len(picked))

    picks = select_batch(make_acquisition(name), s, 0.0, q, available, np.random.default_rng(1), refit=refit)
    assert len(picks) == q == len(set(picks))
    assert all(available[i] for i in picks)
    # Kriging believer refits between picks; Thompson batches need none
    assert len(refits) == (q - 1 if make_acquisition(name).believer else 0)


@pytest.mark.parametrize("name", sorted(ACQUISITIONS))
def test_a_batch_larger_than_what_is_left_returns_what_is_left(name: str) -> None:
    available = np.zeros(50, dtype=bool)
    available[[3, 7]] = True
    picks = select_batch(make_acquisition(name), samples(), 0.0, 5, available, np.random.default_rng(0))
    assert sorted(picks) == [3, 7]


@pytest.mark.parametrize("name", sorted(ACQUISITIONS))
def test_batches_are_reproducible_for_a_seed(name: str) -> None:
    avail = np.ones(50, dtype=bool)
    a = select_batch(make_acquisition(name), samples(), 0.0, 6, avail, np.random.default_rng(7))
    b = select_batch(make_acquisition(name), samples(), 0.0, 6, avail, np.random.default_rng(7))
    assert a == b


def test_expected_improvement_matches_the_closed_form() -> None:
    mean, std, best = 0.3, 0.8, 0.5
    s = np.array([[mean - std], [mean + std]])  # two members: mean 0.3, population std 0.8
    z = (mean - best) / std
    expected = (mean - best) * norm.cdf(z) + std * norm.pdf(z)
    got = ExpectedImprovement().score(s, best, np.random.default_rng(0))
    np.testing.assert_allclose(got, [expected], rtol=1e-10)
    assert (ExpectedImprovement().score(samples(), 0.0, np.random.default_rng(0)) >= 0).all()


def test_expected_improvement_without_observations_ranks_by_optimism() -> None:
    s = np.array([[0.0, 1.0, 0.0], [0.0, 1.0, 2.0]])
    scores = ExpectedImprovement().score(s, -np.inf, np.random.default_rng(0))
    assert np.argmax(scores) == 2


def test_upper_confidence_bound_is_mean_plus_beta_std() -> None:
    s = samples()
    got = UpperConfidenceBound(beta=1.5).score(s, 0.0, np.random.default_rng(0))
    np.testing.assert_allclose(got, s.mean(0) + 1.5 * s.std(0), rtol=1e-12)


def test_thompson_sampling_follows_one_member() -> None:
    s = samples(members=3)
    scores = ThompsonSampling().score(s, 0.0, np.random.default_rng(3))
    assert any(np.array_equal(scores, s[m]) for m in range(3))


def test_unknown_acquisition_and_bad_shapes_are_refused() -> None:
    with pytest.raises(SearchError, match="choose one of"):
        make_acquisition("pi")
    with pytest.raises(SearchError, match=r"\(M, n\)"):
        ExpectedImprovement().score(np.zeros(4), 0.0, np.random.default_rng(0))
    with pytest.raises(SearchError, match="available mask"):
        select_batch(ExpectedImprovement(), samples(), 0.0, 1, np.ones(3, dtype=bool), np.random.default_rng(0))
