"""The search's default surrogate (option ``surrogate="gp"``): a Gaussian process on the candidates, helped
by the pretrained ensemble.

With 10-100 observations, fine-tuning a network ensemble fits few points with many weights; a Gaussian
process fits them with a handful of hyper-parameters chosen by marginal likelihood, and its uncertainty
grows away from the data by construction. Pretraining enters through the kernel's linear term (the
ensemble's predictions of the profiled metrics) and, in the search, through the initial design:

* input ``u`` (option ``representation``): by default the candidates' own features (encoding and
  architecture features), z-scored over the whole space and projected on their leading principal
  components (at most ``max_dims``, keeping ``variance_kept`` of the variance); ``"pretrained"`` uses the
  pretrained members' mean trunk output instead (a *deep kernel*), ``"finetuned"`` the trunk of an ensemble
  fine-tuned on the observations. On NB201 with user-level inputs the features did best
  (``benchmarks/nb201/README.md``; that trunk was trained only to predict the profiled metrics);
* kernel ``k = B[f, f'] * (s_m^2 * Matern52(u / l) + s_l^2 * <p, p'>)``: an ARD Matern 5/2 on ``u`` plus a
  linear kernel on ``p``, the pretrained metric heads' standardised predictions (params, latency, ...), so
  a trend along a profiled metric is learnt from a few points in either direction (the data say whether
  bigger is better); ``B`` correlates the two fidelities (``rho`` in (0, 1), learnt);
* objective values standardised per fidelity as the ensemble does (Gaussian copula of their ranks).

Hyper-parameters are the MAP estimate under weak log-normal priors, found by L-BFGS from the same start at
every fit, so a search stays reproducible. A Kriging-believer refit (``warm_start=True``) keeps them and
only conditions on the believed values. Without a pretrained surrogate the GP works on the z-scored,
projected features themselves and has no linear term.

:meth:`EmbeddingGP.predict_members` returns ``mean + z_m * std`` for ``n_members`` fixed quantiles
``z_m`` (mean 0, std 1 exactly), so the acquisitions' Gaussian EI and UCB see the exact posterior; a
Thompson "member" is then the posterior mean plus a random multiple of the std, not a joint sample.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from scipy.special import ndtri

from nastune.errors import NastuneError
from nastune.surrogate import _fit_objective_transforms, _forward, _inverse, _standardise_objective

if TYPE_CHECKING:
    from nastune.surrogate import DeepEnsemble

__all__ = ["DEFAULT_GP", "EmbeddingGP"]

#: Default options of :class:`EmbeddingGP` (the search's ``surrogate_options`` when ``surrogate="gp"``).
DEFAULT_GP: dict[str, Any] = {
    "max_dims": 16,  # principal components of the representation the kernel sees
    "variance_kept": 0.99,  # ... or fewer, when fewer keep this share of the variance
    "fit_iterations": 60,  # L-BFGS iterations of the hyper-parameter fit
    "n_members": 16,  # pseudo-members returned by predict_members
    "linear_metrics": True,  # the linear kernel on the pretrained metric predictions
    "linear_weight": 0.5,  # the centre of its variance's prior (standardised units; the Matern term's is 1)
    # the Matern kernel's input: "features" (the candidates' own features, z-scored and projected), "pretrained"
    # (the pretrained members' mean trunk output) or "finetuned" (the trunk of an ensemble fine-tuned on the
    # observations); the linear kernel on the pretrained metric predictions is there in all three
    "representation": "features",
    "kernel": "matern",  # on the representation: "matern" (ARD Matern 5/2) or "linear" (Bayesian linear regression)
    "objective_transform": "rank",  # as DeepEnsemble: "rank" or "zscore"
    "noise_floor": 1e-4,  # smallest noise variance (standardised units)
    "jitter": 1e-6,
}


class EmbeddingGP:
    """GP surrogate over the candidates of one space (see the module docstring).

    Args:
        base: the space's pretrained :class:`~nastune.surrogate.DeepEnsemble` (``None``: work on the
            features themselves).
        features: ``(n, d)`` features of every candidate of the space (for the projection's statistics).
        fidelities: the objective's fidelities, ``"hi"`` first.
        seed: seed of the projection's sub-sample on huge spaces.
        projection_rows: ``(n,)`` bool, the candidates whose statistics set the z-scoring and the principal
            components (default: all; a constrained search passes the feasible ones).
        **options: overrides of :data:`DEFAULT_GP`.

    Shapes: ``X`` is always ``(m, d)`` rows of the space's feature matrix; per-candidate outputs ``(m,)``.
    """

    def __init__(
        self,
        base: DeepEnsemble | None,
        features: np.ndarray,
        fidelities: Sequence[str] = ("hi", "lo"),
        *,
        seed: int = 0,
        projection_rows: np.ndarray | None = None,
        **options: Any,
    ) -> None:
        unknown = set(options) - set(DEFAULT_GP)
        if unknown:
            raise NastuneError(f"unknown GP option(s) {sorted(unknown)}; known: {sorted(DEFAULT_GP)}"
                               " (surrogate_options of a search with surrogate='gp')")
        self.hyper: dict[str, Any] = {**DEFAULT_GP, **options}
        if self.hyper["kernel"] not in ("matern", "linear"):
            raise NastuneError(f"GP kernel must be 'matern' or 'linear', got {self.hyper['kernel']!r}")
        self.base = base if base is not None and getattr(base, "pretrained", False) else None
        self.fidelities = [str(f) for f in fidelities]
        self.n_members = int(self.hyper["n_members"])
        if self.n_members < 2:
            raise NastuneError("the GP needs n_members >= 2 pseudo-members")
        q = ndtri((np.arange(self.n_members) + 0.5) / self.n_members)
        self._quantiles = (q - q.mean()) / q.std()
        if self.hyper["representation"] not in ("features", "pretrained", "finetuned"):
            raise NastuneError("GP representation must be 'features', 'pretrained' or 'finetuned',"
                               f" got {self.hyper['representation']!r}")
        # "finetuned": an ensemble fine-tuned on the observations (as surrogate="ensemble" does) supplies the
        # representation at every fresh fit; the GP replaces only its linear heads and their spread
        self._ensemble = self.base.copy() if self.base is not None and self.hyper["representation"] == "finetuned" \
            else None
        self._seed = int(seed)
        self.metric_names = list(self.base.metric_names) if self.base is not None else []
        self.objective_transforms: dict[str, dict[str, Any]] = {}
        self._linear = self.base is not None and bool(self.hyper["linear_metrics"]) and bool(self.metric_names)
        self._state: dict[str, Any] | None = None
        # the search scores the whole space at every step with this same array: its inputs are computed once
        self._space_features = np.asarray(features, dtype=np.float32)
        self._projection_rows = None if projection_rows is None else np.asarray(projection_rows, dtype=bool)
        self._set_projection()

    def _set_projection(self) -> None:
        """Principal components of the representation over the whole space; caches the space's inputs."""
        rep = self._raw(self._space_features)
        if self._projection_rows is not None and self._projection_rows.sum() >= 2:
            rep = rep[self._projection_rows]
        rng = np.random.default_rng(self._seed)
        sample = rep if len(rep) <= 20000 else rep[rng.choice(len(rep), 20000, replace=False)]
        self._mu = sample.mean(0)
        self._sd = np.where(sample.std(0) > 1e-12, sample.std(0), 1.0)
        z = (sample - self._mu) / self._sd
        _, s, vt = np.linalg.svd(z - z.mean(0), full_matrices=False)
        var = s**2 / max(np.sum(s**2), 1e-300)
        keep = int(np.searchsorted(np.cumsum(var), float(self.hyper["variance_kept"])) + 1)
        keep = max(1, min(keep, int(self.hyper["max_dims"]), len(s)))
        # scaled so the first component has unit variance: the others start with less influence
        self._proj = vt[:keep].T / max(s[0] / math.sqrt(len(z)), 1e-12)
        self._space_inputs = self._compute_inputs(self._space_features)

    # -- representation ----------------------------------------------------------------------------------
    def _raw(self, X: np.ndarray) -> np.ndarray:
        """``(m, d)`` -> ``(m, h)`` the members' mean trunk output (the features themselves without a base or
        with ``representation="features"``)."""
        if self.base is None or self.hyper["representation"] == "features":
            return np.asarray(X, dtype=np.float64)
        if self._ensemble is not None and self._ensemble.is_fitted:
            return self._ensemble.embed(X, pretrained=False).mean(0).astype(np.float64)
        return self.base.embed(X, pretrained=True).mean(0).astype(np.float64)

    def _inputs(self, X: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``X: (m, d)`` -> ``u: (m, k)`` projected representation, ``p: (m, K)`` standardised metrics."""
        if X is self._space_features:
            return self._space_inputs
        return self._compute_inputs(X)

    def _compute_inputs(self, X: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2:
            raise NastuneError(f"feature matrix must be (m, d), got shape {X.shape}")
        # in row chunks: a million candidates never hold more than one chunk's float64 copy of their features
        step = 65536
        u = torch.as_tensor(np.concatenate([((self._raw(X[a:a + step]) - self._mu) / self._sd) @ self._proj
                                            for a in range(0, max(len(X), 1), step)]), dtype=torch.float64)
        if not self._linear:
            return u, None
        assert self.base is not None
        predicted = self.base.predict_metrics(X)
        cols = [self.base.standardise_metric(name, predicted[name][0]) for name in self.metric_names]
        return u, torch.as_tensor(np.stack(cols, axis=1), dtype=torch.float64)

    def _fidelity_index(self, fidelity: str) -> int:
        try:
            return self.fidelities.index(fidelity)
        except ValueError:
            raise NastuneError(f"unknown fidelity {fidelity!r}; this surrogate knows {self.fidelities}") from None

    # -- the kernel ----------------------------------------------------------------------------------------
    @staticmethod
    def _unpack(theta: torch.Tensor, k: int) -> dict[str, torch.Tensor]:
        return {"lengthscale": theta[:k].exp(), "matern": theta[k].exp(), "linear": theta[k + 1].exp(),
                "noise": theta[k + 2].exp(), "rho": torch.sigmoid(theta[k + 3])}

    @staticmethod
    def _distance(a: torch.Tensor, b: torch.Tensor, bb: torch.Tensor) -> torch.Tensor:
        """``sqrt(5) * |a_i - b_j|`` (rows already divided by the length-scales; ``bb = |b_j|^2``), in place."""
        r = (a @ b.T).mul_(-2.0).add_((a * a).sum(1)[:, None]).add_(bb[None, :]).clamp_min_(1e-12)
        return r.sqrt_().mul_(math.sqrt(5.0))

    @staticmethod
    def _matern(r: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        """Matern 5/2 of the scaled distance ``r`` (``e = exp(-r)``): ``(1 + r + r^2 / 3) e``."""
        return (r * r).div_(3.0).add_(r).add_(1.0).mul_(e)

    def _shape(self, h: dict[str, torch.Tensor], a: torch.Tensor, b: torch.Tensor, bb: torch.Tensor) -> (
        torch.Tensor
    ):
        """The representation's kernel between rows ``a`` and ``b`` (divided by the length-scales), unscaled."""
        if self.hyper["kernel"] == "linear":
            return (a @ b.T).div_(a.shape[1])
        r = self._distance(a, b, bb)
        return self._matern(r, torch.exp(-r))

    def _kernel_diagonal(self, h: dict[str, torch.Tensor], u: torch.Tensor, p: torch.Tensor | None) -> (
        torch.Tensor
    ):
        """``k(x, x)`` of every row (the fidelity factor is 1 on the diagonal)."""
        if self.hyper["kernel"] == "linear":
            a = u / h["lengthscale"]
            K = h["matern"] * (a * a).sum(1) / a.shape[1]
        else:
            K = h["matern"] * torch.ones(len(u), dtype=u.dtype)
        if p is not None:
            K = K + h["linear"] * (p * p).sum(1) / p.shape[1]
        return K

    def _prior_centre_and_scale(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The log-normal priors on every positive hyper-parameter: centres (every fit starts there) and scales."""
        scale = torch.cat([torch.full((k,), 1.0, dtype=torch.float64), torch.tensor([1.0, 1.5, 2.0, 1.5],
                                                                                    dtype=torch.float64)])
        return self._start(k), scale

    def _start(self, k: int) -> torch.Tensor:
        linear = math.log(float(self.hyper["linear_weight"]))
        return torch.tensor([math.log(1.5)] * k + [0.0, linear, math.log(0.01), 1.0], dtype=torch.float64)

    def _gram(self, h: dict[str, torch.Tensor], u: torch.Tensor, p: torch.Tensor | None, f: torch.Tensor,
              slope: bool = False) -> dict[str, Any]:
        """The observations' kernel matrix ``K`` (noise included) and its parts: ``M`` the representation's term,
        ``P`` the linear metric term, ``S`` their weighted sum, ``other`` 1 between fidelities (``None`` while
        every result is at one fidelity) and, with ``slope``, ``dM / dlog l_k = slope * (a_ik - a_jk)^2``."""
        a = u / h["lengthscale"]
        out: dict[str, Any] = {"a": a, "slope": None}
        if self.hyper["kernel"] == "linear":
            out["M"] = (a @ a.T).div_(a.shape[1])
        else:
            r = self._distance(a, a, (a * a).sum(1))
            e = torch.exp(-r)
            if slope:
                out["slope"] = (1.0 + r).mul_(e).mul_(5.0 / 3.0)
            out["M"] = self._matern(r, e)
        out["P"] = None if p is None else (p @ p.T).div_(p.shape[1])
        out["S"] = h["matern"] * out["M"] if p is None else h["matern"] * out["M"] + h["linear"] * out["P"]
        out["other"] = (f[:, None] != f[None, :]).to(u.dtype) if bool((f != f[0]).any()) else None
        out["B"] = None if out["other"] is None else 1.0 - out["other"] * (1.0 - h["rho"])
        noise = h["noise"] + float(self.hyper["noise_floor"]) + float(self.hyper["jitter"])
        K = out["S"] if out["B"] is None else out["S"] * out["B"]
        out["K"] = K + noise * torch.eye(len(u), dtype=u.dtype)
        return out

    def _loss(self, theta: torch.Tensor, u: torch.Tensor, p: torch.Tensor | None, f: torch.Tensor,
              y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The fit's objective (minus the log marginal likelihood plus minus the log prior, per observation) and
        its gradient in ``theta``, analytic: ``d nll = sum(W * dK)`` with ``W = (K^-1 - alpha alpha^T) / 2``
        (a test holds both to autograd on the kernel's formula). ``None`` where the kernel matrix is not
        positive definite.

        At 300 observations, backpropagating through the Cholesky factor took two thirds of a fit."""
        k, m = u.shape[1], len(y)
        h = self._unpack(theta, k)
        g = self._gram(h, u, p, f, slope=True)
        a, M, P, S, other = g["a"], g["M"], g["P"], g["S"], g["other"]
        L, info = torch.linalg.cholesky_ex(g["K"])
        if int(info) != 0:
            return None
        alpha = torch.cholesky_solve(y[:, None], L)
        nll = 0.5 * (y[:, None] * alpha).sum() + torch.log(torch.diagonal(L)).sum()
        W = torch.cholesky_inverse(L).sub_(alpha @ alpha.T).mul_(0.5)
        WB = W if g["B"] is None else W * g["B"]
        grad = torch.zeros_like(theta)
        if g["slope"] is None:
            G = WB * h["matern"]
            grad[:k] = -2.0 / k * (a * (G @ a)).sum(0)
        else:
            G = g["slope"].mul_(WB).mul_(h["matern"])
            grad[:k] = 2.0 * ((a * a) * G.sum(1)[:, None]).sum(0) - 2.0 * (a * (G @ a)).sum(0)
        grad[k] = h["matern"] * (WB * M).sum()
        if P is not None:
            grad[k + 1] = h["linear"] * (WB * P).sum()
        grad[k + 2] = h["noise"] * torch.diagonal(W).sum()
        if other is not None:
            grad[k + 3] = h["rho"] * (1.0 - h["rho"]) * (W * other * S).sum()
        centre, scale = self._prior_centre_and_scale(k)
        prior = 0.5 * (((theta - centre) / scale) ** 2).sum()
        grad += (theta - centre) / scale**2
        return (nll + prior) / m, grad / m

    def _fit_hyper(self, u: torch.Tensor, p: torch.Tensor | None, f: torch.Tensor, y: torch.Tensor) -> (
        torch.Tensor
    ):
        k = u.shape[1]
        theta = self._start(k)
        optimiser = torch.optim.LBFGS([theta], lr=0.5, max_iter=int(self.hyper["fit_iterations"]),
                                      line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            out = self._loss(theta.detach(), u, p, f, y)
            if out is None:  # the line search tried a degenerate point: reject it
                theta.grad = torch.zeros_like(theta)
                return torch.tensor(1e10, dtype=torch.float64)
            theta.grad = out[1]
            return out[0]

        start = theta.detach().clone()
        try:
            optimiser.step(closure)
        except (RuntimeError, torch.linalg.LinAlgError):
            theta = start
        out = theta.detach()
        return out if torch.isfinite(out).all() else start

    # -- the surrogate contract used by the search ------------------------------------------------------------
    @property
    def is_fitted(self) -> bool:
        return self._state is not None

    def fit(self, X: Any, y: Any, fidelity: Sequence[str] | str = "hi", *, seed: int | None = None,
            steps: int | None = None, warm_start: bool = False, progress: bool = False) -> dict[str, float]:
        """Condition on observations (``X: (m, d)``, ``y: (m,)`` maximised, original units).

        ``warm_start=True`` (a Kriging-believer refit) keeps the hyper-parameters and the objective transforms
        of the last fit. ``seed`` seeds the fine-tuned representation's ensemble (``representation="finetuned"``);
        ``steps`` and ``progress`` are accepted for the ensemble's signature.
        """
        yv = np.asarray(y, dtype=np.float64).reshape(-1)
        m = len(yv)
        if m == 0:
            raise NastuneError("fit needs at least one observation")
        if not np.isfinite(yv).all():
            raise NastuneError("observations must be finite; leave failed evaluations out of fit()")
        fids = [fidelity] * m if isinstance(fidelity, str) else [str(v) for v in fidelity]
        if len(fids) != m:
            raise NastuneError(f"{len(fids)} fidelity labels for {m} observations")
        f = torch.as_tensor([self._fidelity_index(v) for v in fids], dtype=torch.int64)
        fresh = not (warm_start and self._state is not None)
        if fresh:
            self.objective_transforms = _fit_objective_transforms(
                yv, f.numpy(), self.fidelities, str(self.hyper["objective_transform"]))
        yz, _ = _standardise_objective(self.objective_transforms, yv, f.numpy(), self.fidelities)
        if fresh and self._ensemble is not None:
            self._ensemble.fit(X, yv, fids, seed=seed)
            self._set_projection()
        u, p = self._inputs(X)
        yt = torch.as_tensor(yz, dtype=torch.float64)
        theta = self._fit_hyper(u, p, f, yt) if fresh or self._state is None else self._state["theta"]
        h = self._unpack(theta, u.shape[1])
        L = torch.linalg.cholesky(self._gram(h, u, p, f)["K"])
        self._state = {"theta": theta, "u": u, "p": p, "f": f, "L": L,
                       "alpha": torch.cholesky_solve(yt[:, None], L)[:, 0]}
        return {"n": m, "noise": float(h["noise"]), "rho": float(h["rho"])}

    def _posterior(self, X: Any, fidelity: str) -> tuple[np.ndarray, np.ndarray]:
        """Standardised posterior mean and std at ``fidelity`` (prior N(0, k(x, x)) before any fit)."""
        u, p = self._inputs(X)
        s = self._state
        theta = s["theta"] if s is not None else self._start(u.shape[1])
        h = self._unpack(theta, u.shape[1])
        prior_var = self._kernel_diagonal(h, u, p)
        if s is None:
            return np.zeros(len(u)), prior_var.sqrt().numpy()
        mean = np.empty(len(u))
        var = np.empty(len(u))
        # what does not depend on the candidates, once: every candidate is at one fidelity, so the fidelity
        # factor is a per-observation column scale
        column = torch.where(s["f"] == self._fidelity_index(fidelity), 1.0, h["rho"]).to(torch.float64)
        b = s["u"] / h["lengthscale"]
        bb = (b * b).sum(1)
        linear = None if p is None else h["linear"] / p.shape[1] * s["p"].T  # (K, m)
        chunk = 8192
        with torch.no_grad():
            for a in range(0, len(u), chunk):
                sl = slice(a, a + chunk)
                Ks = self._cross_kernel(h, u[sl], b, bb, None if p is None or linear is None else p[sl] @ linear)
                Ks.mul_(column)
                mean[a:a + chunk] = (Ks @ s["alpha"]).numpy()
                v = torch.linalg.solve_triangular(s["L"], Ks.T, upper=False)
                var[a:a + chunk] = (prior_var[sl] - (v * v).sum(0)).numpy()
        return mean, np.sqrt(np.maximum(var, 1e-12))

    def _cross_kernel(self, h: dict[str, torch.Tensor], u: torch.Tensor, b: torch.Tensor, bb: torch.Tensor,
                      linear: torch.Tensor | None) -> torch.Tensor:
        """The kernel between candidates ``u`` and the observations (``b = u_obs / lengthscale``,
        ``bb = |b|^2``, ``linear`` the linear term's block) without the fidelity factor, in place where it can
        (the posterior of a million candidates spends its time here)."""
        K = self._shape(h, u / h["lengthscale"], b, bb).mul_(h["matern"])
        return K if linear is None else K.add_(linear)

    def sample_functions(self, X: Any, n_samples: int, rng: np.random.Generator, *,
                         n_features: int = 1024) -> np.ndarray | None:
        """``(n_samples, m)`` joint posterior draws of the standardised hi-fi objective at the rows of ``X``
        (random Fourier features of the prior, then conditioned on the observations pathwise). ``None`` before
        a fit, with observations at another fidelity, or with the linear representation kernel."""
        s = self._state
        if s is None or self.hyper["kernel"] != "matern" or bool((s["f"] != self._fidelity_index("hi")).any()):
            return None
        u, p = self._inputs(X)
        h = self._unpack(s["theta"], u.shape[1])
        k = u.shape[1]
        g = torch.as_tensor(rng.chisquare(5.0, size=n_features), dtype=torch.float64)
        omega = torch.as_tensor(rng.standard_normal((k, n_features)), dtype=torch.float64) * (5.0 / g).sqrt()
        phase = torch.as_tensor(rng.uniform(0, 2 * math.pi, n_features), dtype=torch.float64)
        w = torch.as_tensor(rng.standard_normal((n_features, n_samples)), dtype=torch.float64)
        scale = (h["matern"] * 2.0 / n_features).sqrt()

        def prior(uu: torch.Tensor, pp: torch.Tensor | None, v: torch.Tensor | None) -> torch.Tensor:
            out = torch.cos((uu / h["lengthscale"]) @ omega + phase) @ w * scale
            if pp is not None and v is not None:
                out = out + pp @ v * (h["linear"] / pp.shape[1]).sqrt()
            return out

        v = None if p is None else torch.as_tensor(rng.standard_normal((p.shape[1], n_samples)), dtype=torch.float64)
        noise = h["noise"] + float(self.hyper["noise_floor"]) + float(self.hyper["jitter"])
        L = s["L"]
        y = L @ (L.T @ s["alpha"])
        eps = torch.as_tensor(rng.standard_normal((len(y), n_samples)), dtype=torch.float64) * noise.sqrt()
        resid = y[:, None] - prior(s["u"], s["p"], v) - eps
        coef = torch.cholesky_solve(resid, L)  # (m_obs, S)
        b = s["u"] / h["lengthscale"]
        bb = (b * b).sum(1)
        linear = None if p is None else h["linear"] / p.shape[1] * s["p"].T
        out = np.empty((n_samples, len(u)))
        with torch.no_grad():
            for a in range(0, len(u), 8192):
                sl = slice(a, a + 8192)
                Ks = self._cross_kernel(h, u[sl], b, bb, None if p is None or linear is None else p[sl] @ linear)
                out[:, sl] = (prior(u[sl], None if p is None else p[sl], v) + Ks @ coef).T.numpy()
        return out

    def predict_members(self, X: Any, fidelity: str = "hi", *, standardised: bool = False) -> np.ndarray:
        """``(n_members, m)`` float32: ``mean + z_j * std`` for the fixed quantiles ``z_j`` (standardised units,
        or back in original units)."""
        mean, std = self._posterior(X, fidelity)
        out = mean[None, :] + self._quantiles[:, None] * std[None, :]
        if not standardised:
            tr = self.objective_transforms.get(fidelity, {"kind": "zscore", "mean": 0.0, "std": 1.0})
            out = _inverse(tr, out)
        return out.astype(np.float32)

    def predict(self, X: Any, fidelity: str = "hi") -> tuple[np.ndarray, np.ndarray]:
        """Mean and std of the objective at ``fidelity`` (original units, over the pseudo-members)."""
        members = self.predict_members(X, fidelity).astype(np.float64)
        return members.mean(0), members.std(0)

    def standardise(self, y: Any, fidelity: str = "hi") -> np.ndarray:
        """Original units -> the standardised units of the last fit (unchanged before any fit)."""
        tr = self.objective_transforms.get(fidelity, {"kind": "zscore", "mean": 0.0, "std": 1.0})
        return _forward(tr, np.asarray(y, dtype=np.float64))

    def __repr__(self) -> str:
        return (f"EmbeddingGP(dims={self._proj.shape[1]}, linear_metrics={self._linear},"
                f" fitted={self.is_fitted})")
