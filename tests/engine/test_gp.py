"""The Gaussian-process surrogate, the search's default (option ``surrogate="gp"``)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

from nastune import DeepEnsemble, NastuneError, SearchError, SearchInstance
from nastune.gp import EmbeddingGP
from tests.engine.test_features import formula, toy_space


def grid(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(n, 3)`` features and a smooth objective of the first two."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, size=(n, 3)).astype(np.float32)
    y = np.sin(X[:, 0]) + 0.5 * np.cos(1.5 * X[:, 1])
    return X, y.astype(np.float64)


def reference_kernel(gp: EmbeddingGP, h: dict[str, torch.Tensor], u1: torch.Tensor, p1: torch.Tensor | None,
                     f1: torch.Tensor, u2: torch.Tensor, p2: torch.Tensor | None, f2: torch.Tensor) -> torch.Tensor:
    """The GP's kernel written plainly for autograd: ``B[f, f'] * (s_m^2 * Matern52(u / l) + s_l^2 <p, p'> / K)``
    (or a linear kernel on ``u / l`` in place of the Matern)."""
    a, b = u1 / h["lengthscale"], u2 / h["lengthscale"]
    if gp.hyper["kernel"] == "linear":
        K = h["matern"] * (a @ b.T) / a.shape[1]
    else:
        r = torch.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1).clamp_min(1e-12)) * 5**0.5
        K = h["matern"] * (1.0 + r + r * r / 3.0) * torch.exp(-r)
    if p1 is not None and p2 is not None:
        K = K + h["linear"] * (p1 @ p2.T) / p1.shape[1]
    same = (f1[:, None] == f2[None, :]).to(K.dtype)
    return K * (same + (1.0 - same) * h["rho"])


def test_the_posterior_passes_through_the_observations_and_widens_away_from_them() -> None:
    X, y = grid()
    gp = EmbeddingGP(None, X, objective_transform="zscore")
    observed = np.arange(0, 400, 20)
    gp.fit(X[observed], y[observed])
    mean, std = gp.predict(X, "hi")
    np.testing.assert_allclose(mean[observed], y[observed], atol=0.05)
    far = np.argsort(np.min(np.linalg.norm(X[:, None, :2] - X[None, observed, :2], axis=2), axis=1))[-20:]
    assert std[observed].max() < 0.5 * std[far].min(), (std[observed].max(), std[far].min())
    # and it generalises: rank correlation with the truth on the unobserved candidates
    rest = np.setdiff1d(np.arange(400), observed)
    assert np.corrcoef(np.argsort(np.argsort(mean[rest])), np.argsort(np.argsort(y[rest])))[0, 1] > 0.8


def test_pseudo_members_carry_the_posterior_mean_and_std_exactly() -> None:
    X, y = grid()
    gp = EmbeddingGP(None, X, n_members=8)
    gp.fit(X[:30], y[:30])
    members = gp.predict_members(X, "hi", standardised=True)
    assert members.shape == (8, 400)
    mean, std = gp._posterior(X, "hi")
    np.testing.assert_allclose(members.mean(0), mean, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(members.std(0), std, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("pretrained", [False, True])
def test_joint_draws_have_the_posterior_mean_and_std_and_are_smooth(pretrained: bool) -> None:
    X, y = grid(300)
    base = None
    if pretrained:  # the linear term on the pretrained metric predictions is drawn too
        base = DeepEnsemble(3, ["size"], n_members=2, seed=0, hidden=16, pretrain_epochs=20)
        base.pretrain(X, {"size": np.exp(X[:, 2]).astype(np.float64)}, progress=False)
    gp = EmbeddingGP(base, X, objective_transform="zscore")
    assert gp.sample_functions(X, 4, np.random.default_rng(0)) is None  # nothing to condition on yet
    gp.fit(X[:40], y[:40])
    draws = gp.sample_functions(X, 2000, np.random.default_rng(0), n_features=4096)
    assert draws is not None and draws.shape == (2000, 300)
    mean, std = gp._posterior(X, "hi")
    # Monte-Carlo error of 2,000 draws: about std / 45 for the mean
    assert np.abs(draws.mean(0) - mean).max() < 0.15 * std.max() + 0.02
    # random Fourier features approximate the prior: the spread is right up to a few per cent, almost everywhere
    assert np.median(np.abs(draws.std(0) / std - 1)) < 0.1
    assert np.corrcoef(draws.std(0), std)[0, 1] > 0.9
    # joint, not independent: close candidates move together within a draw
    near = np.argsort(np.linalg.norm(X - X[100], axis=1))[1]
    centred = draws - draws.mean(0)
    assert np.corrcoef(centred[:, 100], centred[:, near])[0, 1] > 0.5
    assert abs(np.corrcoef(centred[:, 100], centred[:, 101])[0, 1]) < np.corrcoef(centred[:, 100],
                                                                                  centred[:, near])[0, 1]
    # and the observations keep (nearly) their values: the noise is small
    np.testing.assert_allclose(draws[:, :40].mean(0), mean[:40], atol=0.05)


def test_no_joint_draws_from_a_linear_kernel_or_with_low_fidelity_results() -> None:
    X, y = grid(100)
    linear = EmbeddingGP(None, X, kernel="linear")
    linear.fit(X[:20], y[:20])
    assert linear.sample_functions(X, 3, np.random.default_rng(0)) is None
    mixed = EmbeddingGP(None, X)
    mixed.fit(X[:20], y[:20], ["hi"] * 10 + ["lo"] * 10)
    assert mixed.sample_functions(X, 3, np.random.default_rng(0)) is None


def test_a_believer_refit_keeps_the_hyperparameters_and_shrinks_the_std_where_it_believes() -> None:
    X, y = grid()
    gp = EmbeddingGP(None, X, objective_transform="zscore")
    gp.fit(X[:25], y[:25])
    theta = gp._state["theta"].clone()
    believed = int(np.argmax(gp.predict(X)[1]))  # the most uncertain candidate
    mean_before, std_before = gp.predict(X[[believed]])
    gp.fit(X[[*range(25), believed]], np.concatenate([y[:25], mean_before]), warm_start=True)
    assert np.array_equal(gp._state["theta"].numpy(), theta.numpy())
    mean_after, std_after = gp.predict(X[[believed]])
    assert mean_after[0] == pytest.approx(mean_before[0], abs=1e-3)
    assert std_after[0] < 0.3 * std_before[0], (std_after, std_before)


def test_low_fidelity_results_inform_the_high_fidelity_prediction() -> None:
    X, y = grid()
    hi_only = np.arange(0, 400, 50)  # 8 high-fidelity results
    lo = np.arange(1, 400, 4)  # 100 low-fidelity results of a shifted, scaled copy
    rest = np.setdiff1d(np.arange(400), np.concatenate([hi_only, lo]))

    def accuracy(gp: EmbeddingGP) -> float:
        mean, _ = gp.predict(X[rest], "hi")
        return float(np.corrcoef(mean, y[rest])[0, 1])

    alone = EmbeddingGP(None, X)
    alone.fit(X[hi_only], y[hi_only], "hi")
    both = EmbeddingGP(None, X)
    both.fit(np.concatenate([X[hi_only], X[lo]]), np.concatenate([y[hi_only], 0.5 * y[lo] - 3.0]),
             ["hi"] * len(hi_only) + ["lo"] * len(lo))
    assert accuracy(both) > accuracy(alone) + 0.1, (accuracy(both), accuracy(alone))


def test_bad_options_and_inputs_say_what_to_fix() -> None:
    X, y = grid(50)
    with pytest.raises(NastuneError, match="unknown GP option"):
        EmbeddingGP(None, X, lengthscale=2.0)
    gp = EmbeddingGP(None, X)
    with pytest.raises(NastuneError, match="finite"):
        gp.fit(X[:3], [1.0, float("nan"), 2.0])
    with pytest.raises(NastuneError, match="unknown fidelity"):
        gp.fit(X[:3], y[:3], "medium")
    with pytest.raises(SearchError, match="surrogate must be 'ensemble' or 'gp'"):
        SearchInstance("s", None, search_space=toy_space(Path(tempfile.mkdtemp()), 0), surrogate="forest",
                       progress=False)


def test_a_stored_search_with_an_unknown_surrogate_is_refused_when_loaded(tmp_path: Path) -> None:
    import json

    ss = toy_space(tmp_path, 0)
    path = tmp_path / "search.json"
    SearchInstance("s", path, search_space=ss, progress=False)
    state = json.loads(path.read_text())
    state["options"]["surrogate"] = "forest"  # as a service that stores the options itself might
    path.write_text(json.dumps(state))
    with pytest.raises(SearchError, match="surrogate must be 'ensemble' or 'gp', got 'forest'"):
        SearchInstance("s", path, search_space=ss, progress=False)


def test_a_gp_search_repeats_itself_for_a_seed(tmp_path: Path) -> None:
    ss = toy_space(tmp_path, 0)
    values = np.array([formula(e) for e in ss.encodings])

    def history() -> list[int]:
        s = SearchInstance("toy", None, search_space=ss, seed=3, progress=False, surrogate="gp", eval_budget=16)
        out = []
        for _ in range(16):
            for p in s.ask(2 if len(out) > 10 else 1):  # a batch exercises the Kriging believer
                s.tell(p.index, p.fidelity, float(values[p.index]))
                out.append(p.index)
        return out

    assert history() == history()


def test_a_finetuned_representation_is_refitted_to_the_objective_at_each_fresh_fit() -> None:
    X, y = grid(300)
    base = DeepEnsemble(3, ["size"], n_members=3, seed=0, hidden=16, pretrain_epochs=5)
    base.pretrain(X, {"size": np.abs(X[:, 2]) + 0.1}, progress=False)  # knows nothing of the objective
    gp = EmbeddingGP(base, X, representation="finetuned", objective_transform="zscore")
    before = gp._space_inputs[0].clone()
    gp.fit(X[:60], y[:60], seed=0)
    after = gp._space_inputs[0]
    assert before.shape != after.shape or not torch.allclose(before, after)
    mean, _ = gp.predict(X[60:])
    assert np.corrcoef(mean, y[60:])[0, 1] > 0.6
    believed = gp._space_inputs
    gp.fit(X[:61], np.append(y[:60], mean[0]), warm_start=True)  # a believer refit keeps the representation
    assert gp._space_inputs is believed


def test_the_default_gp_follows_a_pretrained_metric_beyond_the_observed_range() -> None:
    # The objective grows with a profiled metric that is a bowl in the features; observations only cover its
    # floor. The linear term on the pretrained metric prediction carries the trend up both walls; a
    # stationary kernel on the features alone falls back to the mean there.
    rng = np.random.default_rng(1)
    X = rng.uniform(-2, 2, size=(600, 3)).astype(np.float32)
    size = np.exp(2 * np.abs(X[:, 2])).astype(np.float64)
    base = DeepEnsemble(3, ["size"], n_members=3, seed=0, hidden=32, pretrain_epochs=60)
    base.pretrain(X, {"size": size}, progress=False)  # learns the metric, never the objective
    y = np.abs(X[:, 2]) + 0.3 * np.sin(2 * X[:, 0])
    seen = np.flatnonzero(np.abs(X[:, 2]) < 0.6)[:40]
    unseen = np.flatnonzero(np.abs(X[:, 2]) > 1.2)
    top = set(unseen[np.argsort(-y[unseen])[: len(unseen) // 5]].tolist())

    def hits(**options: object) -> int:
        gp = EmbeddingGP(base, X, objective_transform="zscore", **options)
        assert gp.hyper["representation"] == "features"
        gp.fit(X[seen], y[seen])
        mean, _ = gp.predict(X[unseen])
        return sum(int(i) in top for i in unseen[np.argsort(-mean)[:10]])

    with_trend, without = hits(), hits(linear_metrics=False)
    assert with_trend >= 7 and with_trend > without


@pytest.mark.parametrize("kernel", ["matern", "linear"])
def test_the_fast_posterior_equals_the_kernel_formula_at_both_fidelities(kernel: str) -> None:
    X, y = grid(600)
    base = DeepEnsemble(3, ["size"], n_members=3, seed=0, hidden=16, pretrain_epochs=3)
    base.pretrain(X, {"size": np.exp(X[:, 2]).astype(np.float64)}, progress=False)
    gp = EmbeddingGP(base, X, kernel=kernel)
    gp.fit(X[:50], y[:50], ["hi"] * 30 + ["lo"] * 20)
    state = gp._state
    assert state is not None
    u, p = gp._inputs(X)
    h = gp._unpack(state["theta"], u.shape[1])
    for fidelity in ("hi", "lo"):
        f = torch.full((len(u),), gp._fidelity_index(fidelity), dtype=torch.int64)
        Ks = reference_kernel(gp, h, u, p, f, state["u"], state["p"], state["f"])  # the kernel the fit used
        v = torch.linalg.solve_triangular(state["L"], Ks.T, upper=False)
        var = (gp._kernel_diagonal(h, u, p) - (v * v).sum(0)).numpy()
        mean, std = gp._posterior(X, fidelity)
        np.testing.assert_allclose(mean, (Ks @ state["alpha"]).numpy(), atol=1e-9)
        np.testing.assert_allclose(std, np.sqrt(np.maximum(var, 1e-12)), atol=1e-9)


@pytest.mark.parametrize("kernel", ["matern", "linear"])
@pytest.mark.parametrize("fidelities", [["hi"] * 40, ["hi"] * 25 + ["lo"] * 15])
def test_the_analytic_gradient_of_the_fit_equals_autograd_on_the_kernel(kernel: str, fidelities: list[str]) -> None:
    X, y = grid(300)
    base = DeepEnsemble(3, ["size"], n_members=3, seed=0, hidden=16, pretrain_epochs=3)
    base.pretrain(X, {"size": np.exp(X[:, 2]).astype(np.float64)}, progress=False)
    gp = EmbeddingGP(base, X, kernel=kernel)
    u, p = gp._inputs(X[:40])
    f = torch.as_tensor([gp._fidelity_index(v) for v in fidelities])
    yt = torch.as_tensor(y[:40] - y[:40].mean())
    k = u.shape[1]
    theta = gp._start(k) + torch.as_tensor(np.random.default_rng(1).normal(0, 0.4, k + 4))
    out = gp._loss(theta, u, p, f, yt)
    assert out is not None
    loss, grad = out

    t = theta.clone().requires_grad_(True)  # the same objective, written with the autograd kernel
    h = gp._unpack(t, k)
    K = reference_kernel(gp, h, u, p, f, u, p, f)
    noise = h["noise"] + gp.hyper["noise_floor"] + gp.hyper["jitter"]
    L = torch.linalg.cholesky(K + noise * torch.eye(len(u), dtype=K.dtype))
    alpha = torch.cholesky_solve(yt[:, None], L)
    centre, scale = gp._prior_centre_and_scale(k)
    reference = (0.5 * (yt[:, None] * alpha).sum() + torch.log(torch.diagonal(L)).sum()
                 + 0.5 * (((t - centre) / scale) ** 2).sum()) / len(u)
    reference.backward()
    assert float(loss) == pytest.approx(float(reference.detach()), rel=1e-10)
    np.testing.assert_allclose(grad.numpy(), t.grad.numpy(), rtol=1e-6, atol=1e-9)


def test_a_constrained_search_projects_on_the_candidates_it_may_propose(tmp_path: Path) -> None:
    ss = toy_space(tmp_path, 0)
    values = np.array([formula(e) for e in ss.encodings])
    bound = float(np.percentile(ss.profile["latency"], 25))
    feasible = ss.profile["latency"] <= bound
    s = SearchInstance("c", None, search_space=ss, seed=0, progress=False, constraints={"latency": ("<=", bound)})
    for _ in range(12):
        (p,) = s.ask(1)
        assert feasible[p.index]
        s.tell(p.index, p.fidelity, float(values[p.index]))
    model = s._model
    assert isinstance(model, EmbeddingGP)
    X = np.asarray(s._features, dtype=np.float64)
    # z-scored over the feasible quarter, not over the whole space (whose mean lies elsewhere)
    np.testing.assert_allclose(model._mu, X[feasible].mean(0), atol=1e-5)
    assert np.abs(X.mean(0) - X[feasible].mean(0)).max() > 0.1
    unconstrained = SearchInstance("u", None, search_space=ss, seed=0, progress=False)
    assert isinstance(unconstrained._fresh_model(), EmbeddingGP)
    np.testing.assert_allclose(unconstrained._fresh_model()._mu, X.mean(0), atol=1e-5)
