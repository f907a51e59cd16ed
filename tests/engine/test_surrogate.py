"""DeepEnsemble: shapes, pretraining, fidelity heads, transforms, diversity and safetensors round trips."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load, save

from nastune import DeepEnsemble, NastuneError

FAST = {"hidden": 16, "pretrain_epochs": 40, "finetune_steps": 60, "pretrain_batch_size": 64}


def data(n: int = 300, d: int = 8, seed: int = 0) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.random((n, d)).astype(np.float32)
    size = np.exp(3.0 * X[:, :3].sum(1))  # heavy right tail: spans > 20x
    width = X[:, 3] * 2.0 + X[:, 4]
    y = np.log(size) - 2.0 * (X[:, 5] - 0.5) ** 2
    return X, {"size": size, "width": width}, y


def test_predictions_have_the_documented_shapes() -> None:
    X, targets, y = data()
    ens = DeepEnsemble(X.shape[1], list(targets), n_members=4, seed=0, **FAST)
    ens.pretrain(X, targets, progress=False)
    ens.fit(X[:20], y[:20], "hi")
    mean, std = ens.predict(X)
    assert mean.shape == std.shape == (len(X),)
    assert ens.predict_members(X, "hi").shape == (4, len(X))
    metrics = ens.predict_metrics(X[:7])
    assert set(metrics) == {"size", "width"} and all(m.shape == s.shape == (7,) for m, s in metrics.values())
    assert ens.embed(X[:5]).shape == (4, 5, 16)


def test_pretraining_reduces_the_loss_of_every_metric() -> None:
    X, targets, _ = data()
    ens = DeepEnsemble(X.shape[1], list(targets), seed=1, **FAST)
    ens._metric_matrix(targets, len(X))  # transforms only, weights untouched
    before = ens.metric_loss(X, targets)
    stats = ens.pretrain(X, targets, progress=False)
    after = ens.metric_loss(X, targets)
    for name in targets:
        assert after[name] < 0.5 * before[name], (name, before[name], after[name])
    assert stats["simultaneous"] is True and stats["steps"] > 0
    torch.testing.assert_close(torch.tensor(stats["loss"]["size"]), torch.tensor(after["size"]), rtol=1e-4, atol=1e-6)


def test_sequential_pretraining_trains_one_metric_after_the_other() -> None:
    X, targets, _ = data()
    sim = DeepEnsemble(X.shape[1], list(targets), seed=2, **FAST)
    seq = DeepEnsemble(X.shape[1], list(targets), seed=2, **FAST)
    s1 = sim.pretrain(X, targets, simultaneous=True, progress=False)
    s2 = seq.pretrain(X, targets, simultaneous=False, progress=False)
    assert s2["simultaneous"] is False and s2["steps"] == 2 * s1["steps"]
    # the last metric trained is fitted well; both schemes end with finite losses
    assert s2["loss"]["width"] < 0.2
    assert all(np.isfinite(v) for v in s2["loss"].values())


def test_heavy_tailed_metrics_are_logged_automatically_or_as_configured() -> None:
    X, targets, _ = data()
    auto = DeepEnsemble(X.shape[1], list(targets), **FAST)
    auto.pretrain(X, targets, progress=False)
    assert auto.metric_transforms["size"]["log"] is True
    assert auto.metric_transforms["width"]["log"] is False
    forced = DeepEnsemble(X.shape[1], list(targets), log_metrics=[], **FAST)
    forced.pretrain(X, targets, progress=False)
    assert forced.metric_transforms["size"]["log"] is False
    # predictions come back in original units
    mean, _ = auto.predict_metrics(X)["size"]
    assert np.corrcoef(np.log(mean), np.log(targets["size"]))[0, 1] > 0.8


def test_missing_targets_are_masked_not_learned() -> None:
    X, targets, _ = data()
    holes = dict(targets)
    holes["width"] = targets["width"].copy()
    holes["width"][::2] = np.nan
    ens = DeepEnsemble(X.shape[1], list(targets), **FAST)
    stats = ens.pretrain(X, holes, progress=False)
    assert np.isfinite(stats["loss"]["width"])
    mean, _ = ens.predict_metrics(X[::2])["width"]  # the unseen half is still predicted from the trunk
    assert np.corrcoef(mean, targets["width"][::2])[0, 1] > 0.8


def test_each_fidelity_head_learns_its_own_level_through_a_shared_trunk() -> None:
    X, targets, y = data(seed=3)
    ens = DeepEnsemble(X.shape[1], list(targets), seed=3, **FAST)
    ens.pretrain(X, targets, progress=False)
    hi, lo = np.arange(0, 40), np.arange(40, 200)
    Xo = np.concatenate([X[hi], X[lo]])
    yo = np.concatenate([y[hi], y[lo] - 10.0])  # the low fidelity reads 10 lower
    fid = ["hi"] * len(hi) + ["lo"] * len(lo)
    ens.fit(Xo, yo, fid, seed=0)
    mh, _ = ens.predict(X[200:], "hi")
    ml, _ = ens.predict(X[200:], "lo")
    assert abs((mh - ml).mean() - 10.0) < 1.5
    # low-fidelity data moves the high-fidelity predictions (shared trunk)
    only_hi = ens.copy()
    only_hi.fit(X[hi], y[hi], "hi", seed=0)
    assert not np.allclose(only_hi.predict(X[200:], "hi")[0], mh)
    # only a few weights are fidelity-specific
    sd = ens.state_dict()
    assert sd["base.fidelity_head.weight"].shape == (5, 16, 2)


def test_hi_fidelity_observations_weigh_more() -> None:
    assert DeepEnsemble(3, []).hyper["fidelity_weights"] == {"hi": 3.0, "lo": 1.0}
    rng = np.random.default_rng(0)
    X = rng.random((80, 4)).astype(np.float32)
    f_hi, f_lo = np.sin(6 * X[:, 0]), np.cos(6 * X[:, 1])  # conflicting demands on a 2-unit trunk
    Xo = np.concatenate([X, X])
    yo = np.concatenate([f_hi, f_lo])
    fid = ["hi"] * 80 + ["lo"] * 80
    errors = {}
    for name, weights in {"hi-heavy": {"hi": 10.0, "lo": 1.0}, "lo-heavy": {"hi": 1.0, "lo": 10.0}}.items():
        ens = DeepEnsemble(4, [], seed=0, hidden=2, n_layers=1, bootstrap=False, trunk_lr_factor=1.0,
                           finetune_steps=400, fidelity_weights=weights)
        ens.fit(Xo, yo, fid, seed=0)
        errors[name] = float(((ens.predict(X, "hi")[0] - f_hi) ** 2).mean())
    assert errors["hi-heavy"] < errors["lo-heavy"]


def test_rank_transform_tames_a_heavy_lower_tail() -> None:
    X, targets, y = data(seed=5)
    y = y.copy()
    y[:5] = -100.0  # a few diverged networks
    z = DeepEnsemble(X.shape[1], list(targets), seed=0, objective_transform="zscore", **FAST)
    z.pretrain(X, targets, progress=False)
    r = z.copy()
    r.hyper["objective_transform"] = "rank"
    assert DeepEnsemble(X.shape[1], list(targets)).hyper["objective_transform"] == "rank"  # the default
    z.fit(X[:60], y[:60], "hi", seed=0)
    r.fit(X[:60], y[:60], "hi", seed=0)
    assert r.objective_transforms["hi"]["kind"] == "rank"
    good = np.arange(60, 300)
    rho_z = np.corrcoef(z.predict(X[good])[0], y[good])[0, 1]
    rho_r = np.corrcoef(r.predict(X[good])[0], y[good])[0, 1]
    assert rho_r > rho_z
    # forward and inverse transforms agree on observed values
    back = r.standardise(y[:60], "hi")
    assert np.all(np.diff(back[np.argsort(y[:60])]) >= -1e-12)


def test_members_disagree_and_a_random_prior_widens_the_spread_away_from_data() -> None:
    X, targets, y = data(seed=6)
    plain = DeepEnsemble(X.shape[1], list(targets), seed=0, **FAST)
    plain.pretrain(X, targets, progress=False)
    prior = plain.copy()
    prior.hyper["prior_scale"] = 3.0
    plain.fit(X[:15], y[:15], "hi", seed=0)
    prior.fit(X[:15], y[:15], "hi", seed=0)
    assert (plain.predict(X)[1] > 0).all()
    assert prior.predict(X[15:])[1].mean() > plain.predict(X[15:])[1].mean()


def test_fit_is_deterministic_for_a_seed() -> None:
    X, targets, y = data(seed=7)
    a = DeepEnsemble(X.shape[1], list(targets), seed=0, **FAST)
    a.pretrain(X, targets, progress=False)
    b = a.copy()
    a.fit(X[:30], y[:30], "hi", seed=11)
    b.fit(X[:30], y[:30], "hi", seed=11)
    np.testing.assert_array_equal(a.predict_members(X), b.predict_members(X))
    b.fit(X[:30], y[:30], "hi", seed=12)
    assert not np.array_equal(a.predict_members(X), b.predict_members(X))


def test_state_round_trips_through_safetensors_and_json() -> None:
    X, targets, y = data(seed=8)
    ens = DeepEnsemble(X.shape[1], list(targets), n_members=3, seed=0,
                       **{**FAST, "objective_transform": "rank", "prior_scale": 0.5})
    ens.pretrain(X, targets, progress=False)
    ens.fit(X[:25], y[:25], "hi", seed=0)
    blob = save(ens.state_dict())  # no pickle anywhere
    config = json.loads(json.dumps(ens.config()))
    back = DeepEnsemble.from_state(config, load(blob))
    torch.testing.assert_close(torch.tensor(back.predict_members(X)), torch.tensor(ens.predict_members(X)),
                               rtol=0, atol=0)
    for name in targets:
        torch.testing.assert_close(torch.tensor(back.predict_metrics(X)[name][0]),
                                   torch.tensor(ens.predict_metrics(X)[name][0]), rtol=1e-6, atol=1e-9)
    assert back.metric_transforms == ens.metric_transforms
    assert isinstance(io.BytesIO(blob).read(8), bytes)


def test_bad_inputs_raise_errors_that_say_what_to_do() -> None:
    X, targets, y = data()
    with pytest.raises(NastuneError, match="unknown DeepEnsemble option"):
        DeepEnsemble(8, ["size"], hiden=3)
    ens = DeepEnsemble(8, list(targets), **FAST)
    with pytest.raises(NastuneError, match=r"expected \(n, 8\)"):
        ens.predict(X[:, :5])
    with pytest.raises(NastuneError, match="lack metric"):
        ens.pretrain(X, {"size": targets["size"]}, progress=False)
    with pytest.raises(NastuneError, match="unknown fidelity"):
        ens.fit(X[:3], y[:3], "medium")
    with pytest.raises(NastuneError, match="finite"):
        ens.fit(X[:3], [1.0, np.nan, 2.0], "hi")
    with pytest.raises(NastuneError, match="version"):
        DeepEnsemble.from_state({**ens.config(), "version": 99}, ens.state_dict())


def test_heads_start_where_the_pretrained_metrics_point() -> None:
    # the objective is (mostly) the log of a pretrained metric: from five observations and no gradient steps,
    # heads initialised from the metric heads already rank unseen candidates; random heads cannot
    X, targets, y = data(seed=7)
    base = DeepEnsemble(X.shape[1], list(targets), seed=0, **FAST)
    base.pretrain(X, targets, progress=False)
    unseen = np.arange(5, len(X))
    rho = {}
    for init in ("metrics", "none"):
        ens = base.copy()
        ens.hyper["head_init"] = init
        ens.fit(X[:5], y[:5], "hi", seed=0, steps=0)
        rho[init] = float(np.corrcoef(ens.predict(X[unseen])[0], y[unseen])[0, 1])
    assert rho["metrics"] > 0.8
    assert rho["metrics"] > abs(rho["none"]) + 0.3


def test_head_skip_keeps_the_metric_start_and_adds_nothing_from_the_raw_features_before_training() -> None:
    # with head_skip the heads also read the raw features; their start is still the metric combination, and the
    # raw-feature part starts at zero, so without gradient steps it predicts what the trunk-only head predicts
    X, targets, y = data(seed=7)
    base = DeepEnsemble(X.shape[1], list(targets), seed=0, **FAST)
    base.pretrain(X, targets, progress=False)
    plain, skip = base.copy(), base.copy()
    skip.hyper["head_skip"] = True
    for ens in (plain, skip):
        ens.fit(X[:5], y[:5], "hi", seed=0, steps=0)
    np.testing.assert_allclose(skip.predict(X)[0], plain.predict(X)[0], rtol=1e-4, atol=1e-4)


def test_head_init_leaves_an_unpretrained_ensemble_alone() -> None:
    X, targets, y = data(seed=8)
    a = DeepEnsemble(X.shape[1], list(targets), seed=0, head_init="metrics", **FAST)
    b = DeepEnsemble(X.shape[1], list(targets), seed=0, head_init="none", **FAST)
    for ens in (a, b):
        ens.fit(X[:20], y[:20], "hi", seed=0)
    np.testing.assert_array_equal(a.predict(X)[0], b.predict(X)[0])
