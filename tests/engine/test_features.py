"""Automatic features: architecture and encoding features, bundle round trip, warm start, a toy search."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from nastune import (
    BundleError,
    EncodingError,
    ProfilingError,
    SearchError,
    SearchInstance,
    create_search_space,
    load_search_space,
)
from nastune.features import ARCH_FEATURE_NAMES, architecture_features

NAMES = list(ARCH_FEATURE_NAMES)


def feature(vector: np.ndarray, name: str) -> float:
    return float(vector[NAMES.index(name)])


class TwoConvs(nn.Module):
    """Two 3x3 convolutions wired in series (``"serial"``) or side by side and summed (``"parallel"``)."""

    def __init__(self, wiring: str) -> None:
        super().__init__()
        self.wiring = wiring
        self.a = nn.Conv2d(4, 4, 3, padding=1)
        self.b = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.wiring == "serial":
            return self.b(self.a(x))
        return self.a(x) + self.b(x)


def test_op_counts_widths_and_shares_of_a_known_network() -> None:
    with torch.device("meta"):  # as profiling builds it: no weights allocated
        net = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
            nn.Conv2d(8, 16, 1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10),
        )
    v = architecture_features(net)
    assert v.shape == (len(NAMES),) and np.isfinite(v).all()
    expected_counts = {"conv3x3": 1, "conv1x1": 1, "norm": 2, "activation": 2, "pool_avg": 1, "linear": 1}
    for category, count in expected_counts.items():
        assert feature(v, f"count {category}") == pytest.approx(np.log1p(count)), category
    assert feature(v, "count conv5x5") == 0.0
    total = 3 * 8 * 9 + 8 + 8 * 16 + 16 + 2 * (8 + 16) + 16 * 10 + 10
    assert feature(v, "log_params") == pytest.approx(np.log1p(total))
    assert feature(v, "params share linear") == pytest.approx(170 / total)
    assert feature(v, "max_log2_width") == pytest.approx(4.0)  # 16 channels
    assert feature(v, "depth_weighted_longest") == 3.0  # two convolutions and the classifier on one path
    assert feature(v, "graph_traced") == 1.0


def test_two_networks_that_differ_only_in_wiring_get_different_graph_features() -> None:
    serial = architecture_features(TwoConvs("serial"))
    parallel = architecture_features(TwoConvs("parallel"))
    same = [k for k, n in enumerate(NAMES) if n.startswith(("params share", "flops share", "count conv"))]
    np.testing.assert_array_equal(serial[same], parallel[same])  # same ops, same parameters
    assert feature(parallel, "log_adds") == pytest.approx(np.log1p(1)) and feature(serial, "log_adds") == 0.0
    assert feature(serial, "depth_weighted_longest") == 2.0 and feature(parallel, "depth_weighted_longest") == 1.0
    assert feature(parallel, "log_paths") == pytest.approx(np.log1p(2)) and feature(serial, "log_paths") == \
        pytest.approx(np.log1p(1))
    wl = [k for k, n in enumerate(NAMES) if n.startswith("wl")]
    assert not np.array_equal(serial[wl], parallel[wl])


def test_zero_operations_cut_live_paths() -> None:
    class Cut(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(2, 2, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(x).mul(0.0) + x

    v = architecture_features(Cut())
    assert feature(v, "log_paths") == pytest.approx(np.log1p(2))
    assert feature(v, "log_live_paths") == pytest.approx(np.log1p(1))  # only the skip carries a signal
    assert feature(v, "count zero") == pytest.approx(np.log1p(1))


def test_path_features_describe_the_depth_and_the_ops_of_every_live_path() -> None:
    class Residual(nn.Module):
        """conv -> conv with an identity shortcut, then a zeroed 1x1 branch that carries nothing."""

        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Conv2d(2, 2, 3, padding=1)
            self.b = nn.Conv2d(2, 2, 3, padding=1)
            self.dead = nn.Conv2d(2, 2, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.b(self.a(x)) + x + self.dead(x).mul(0.0)

    v = architecture_features(Residual())
    # two live paths: depth 2 (both convolutions) and depth 0 (the shortcut); the 1x1 branch is cut
    assert feature(v, "path depth mean") == pytest.approx(1.0) and feature(v, "path depth std") == pytest.approx(1.0)
    assert feature(v, "path depth q10") == 0.0 and feature(v, "path depth q90") == 2.0
    assert feature(v, "path depth share 0+") == pytest.approx(0.5) and feature(v, "path depth share 2+") == \
        pytest.approx(0.5)
    assert feature(v, "path mean count conv3x3") == pytest.approx(1.0)  # 2 on one path, 0 on the other
    assert feature(v, "path mean count conv1x1") == 0.0  # only on the cut path
    serial, parallel = architecture_features(TwoConvs("serial")), architecture_features(TwoConvs("parallel"))
    assert feature(serial, "path depth mean") == 2.0 and feature(parallel, "path depth mean") == 1.0


def test_path_features_stay_finite_on_a_graph_with_astronomically_many_paths() -> None:
    class Doubling(nn.Module):
        """Sixty blocks that each double the number of paths (1e18 paths in all)."""

        def __init__(self) -> None:
            super().__init__()
            self.convs = nn.ModuleList(nn.Conv2d(1, 1, 1) for _ in range(60))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            for conv in self.convs:
                x = conv(x) + x
            return x

    v = architecture_features(Doubling())
    assert np.isfinite(v).all()
    assert feature(v, "path depth mean") == pytest.approx(30.0)  # each conv is on half the paths
    assert feature(v, "path depth q50") == 30.0
    shares = [k for k, n in enumerate(NAMES) if n.startswith("path depth share")]
    assert v[shares].sum() == pytest.approx(1.0)


def test_a_network_fx_cannot_trace_still_gets_module_features() -> None:
    class Dynamic(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(2, 2, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(x) if x.sum() > 0 else x  # data-dependent: not traceable

    v = architecture_features(Dynamic())
    assert feature(v, "graph_traced") == 0.0 and feature(v, "count conv3x3") == pytest.approx(np.log1p(1))


def test_preprocess_reads_architecture_features_and_they_survive_the_bundle(make_tiny_space) -> None:
    ss = make_tiny_space()
    n = len(ss)
    d_encoding = ss.features.shape[1]
    ss.preprocess(pretraining_data={"params": np.arange(1.0, n + 1)}, progress=False, seed=0,
                  surrogate_options={"hidden": 8, "pretrain_epochs": 2})
    assert ss.architecture_raw is not None and ss.architecture_raw.shape == (n, len(NAMES))
    # the tiny space varies width, depth and activation: counts, widths and depth are informative
    groups = ss.describe()["features"]["groups"]
    assert groups["architecture"] >= 5 and ss.features.shape[1] == d_encoding + groups["architecture"]
    depth_col = NAMES.index("count conv3x3")
    np.testing.assert_allclose(ss.architecture_raw[:, depth_col], np.log1p([e[1] for e in ss.encodings]))
    assert ss.surrogate is not None and ss.surrogate.n_features == ss.features.shape[1]
    loaded = load_search_space(ss.save_filename)
    np.testing.assert_array_equal(loaded.features, ss.features)
    np.testing.assert_array_equal(loaded.architecture_raw, ss.architecture_raw)
    assert loaded.feature_names == ss.feature_names and loaded.surrogate is not None


def test_a_bundle_made_before_the_path_features_still_loads_with_its_features_unchanged(make_tiny_space) -> None:
    from nastune import bundle
    from nastune.features import EARLIER_ARCH_WIDTHS

    ss = make_tiny_space()
    ss.preprocess(pretraining_data={"params": np.arange(1.0, len(ss) + 1)}, progress=False, pretrain=False)
    old_width = EARLIER_ARCH_WIDTHS[0]
    older = ss.architecture_raw.copy()
    older[:, old_width:] = np.nan  # what the older release did not compute
    ss.set_architecture_features(older)
    assert max(ss.architecture_stats["columns"]) < old_width
    members = bundle.space_members(ss)
    from safetensors.numpy import save as save_numpy

    members["architecture.safetensors"] = save_numpy({"architecture": np.ascontiguousarray(older[:, :old_width])})
    path = bundle.write_bundle(ss.save_filename.with_name("older.nastune"), members, name="tiny")
    loaded = load_search_space(path)
    assert loaded.architecture_raw.shape == (len(ss), len(NAMES))
    assert np.isnan(loaded.architecture_raw[:, old_width:]).all()
    np.testing.assert_array_equal(loaded.features, ss.features)
    truncated = dict(members, **{"architecture.safetensors": save_numpy({"architecture": older[:, :5].copy()})})
    with pytest.raises(BundleError, match=r"architecture\.safetensors"):
        load_search_space(bundle.write_bundle(ss.save_filename.with_name("bad.nastune"), truncated, name="tiny"))


def test_user_features_override_the_automatic_ones(make_tiny_space) -> None:
    custom = np.random.default_rng(0).normal(size=(12, 3)).astype(np.float32)
    ss = make_tiny_space(features=custom)
    ss.preprocess(pretraining_data={"params": np.arange(1.0, 13.0)}, progress=False, pretrain=False)
    assert ss.architecture_raw is None
    np.testing.assert_array_equal(ss.features, custom)
    assert ss.describe()["features"]["groups"] == {"custom": 3}


def test_ordinal_columns_and_interactions_are_chosen_from_the_metrics(tmp_path: Path) -> None:
    encodings = list(itertools.product((1, 2, 3, 4), (16, 32, 64, 128), ("relu", "gelu")))
    m = np.array([(d, w) for d, w, _ in encodings], dtype=np.float64)
    plain = create_search_space("dw0", tmp_path / "dw0.nastune", encodings)
    assert [o["position"] for o in plain.encoding_extras["ordinal"]] == [0, 1]
    assert plain.encoding_extras["mode"] == "off" and plain.features.shape[1] == 4 + 4 + 2 + 2
    ss = create_search_space("dw", tmp_path / "dw.nastune", encodings, interactions="auto")
    assert ss.encoding_extras["mode"] == "auto" and ss.encoding_extras["interactions"] == []
    # one-hot columns already fit any sum of per-position effects (and a logged product is one): a signed
    # product of centred depth and width is what they cannot fit
    ss.profile["balance"] = (m[:, 0] - 2.5) * (m[:, 1] - 60.0)
    ss.pretrain(seed=0, progress=False, hidden=8, pretrain_epochs=2)
    assert ss.encoding_extras["interactions"] == [[0, 1]]
    assert ss.feature_names[-1] == "0 (ordinal) x 1 (ordinal)" and ss.surrogate.n_features == ss.features.shape[1]
    other = create_search_space("dw2", tmp_path / "dw2.nastune", encodings, interactions="auto")
    other.profile["params"] = m[:, 0] * m[:, 1] ** 2  # logged, it is additive: products add nothing
    other.pretrain(seed=0, progress=False, hidden=8, pretrain_epochs=2)
    assert other.encoding_extras["interactions"] == []
    assert create_search_space("dw3", tmp_path / "dw3.nastune", encodings, interactions=True).encoding_extras[
        "interactions"] == [[0, 1]]
    with pytest.raises(EncodingError, match="interactions must be"):
        create_search_space("dw4", tmp_path / "dw4.nastune", encodings, interactions="sometimes")


def test_describe_reports_heldout_kendall_tau_per_metric(make_grid_space) -> None:
    space = make_grid_space(n_positions=4, n_values=5, pretrained=False)
    space.pretrain(seed=0, progress=False, hidden=32, pretrain_epochs=20)
    info = space.describe()
    assert set(info["metrics"]) == {"size", "balance"} and info["pretrained"]
    tau = info["metrics"]["size"]["heldout_kendall_tau"]
    assert tau is not None and tau > 0.6  # size = exp(sum / 2) is easy to rank
    assert space.pretrain_info["heldout"] == 62  # 10 % of 625


def test_add_results_checks_its_input(make_grid_space) -> None:
    space = make_grid_space(pretrained=False)
    space.add_results("earlier", {0: 1.0, (1, 1, 1): 2.0})
    assert np.isfinite(space.profile["earlier"]).sum() == 2 and space.profile["earlier"][space.index_of((1, 1, 1))] == 2
    with pytest.raises(ProfilingError, match="not in search space"):
        space.add_results("x", {(9, 9, 9): 1.0})
    with pytest.raises(ProfilingError, match="not finite"):
        space.add_results("x", {0: float("nan")})
    with pytest.raises(ProfilingError, match="outside"):
        space.add_results("x", {10_000: 1.0})
    with pytest.raises(ProfilingError, match="not allowed"):
        space.add_results("bad name", {0: 1.0})


def formula(encoding: tuple) -> float:
    """A smooth objective over ordinal positions (depth, width, kernel) with an interaction; optimum inside."""
    depth, width, kernel, act = encoding
    value = -(depth - 4) ** 2 - 0.002 * (width - 96) ** 2 - (kernel - 5) ** 2 * 0.5 + 0.05 * depth * width / 32
    return float(value + (0.3 if act == "gelu" else 0.0))


def toy_space(tmp_path: Path, seed: int) -> Any:
    encodings = list(itertools.product((1, 2, 3, 4, 5, 6), (16, 32, 64, 96, 128, 192), (1, 3, 5, 7), ("relu", "gelu")))
    ss = create_search_space("toy", tmp_path / "toy.nastune", encodings)
    m = np.array([e[:3] for e in encodings], dtype=np.float64)
    ss.profile["params"] = m[:, 0] * m[:, 1] ** 2 * m[:, 2] ** 2
    ss.profile["latency"] = m[:, 0] * m[:, 1] * m[:, 2]
    ss.pretrain(seed=seed, progress=False, hidden=32, pretrain_epochs=10)
    return ss


@pytest.mark.parametrize("options", [{}, {"surrogate": "ensemble", "surrogate_options": {"finetune_steps": 100}}],
                         ids=["default", "ensemble"])
def test_toy_search_finds_the_known_optimum_much_faster_than_random(tmp_path: Path, options: dict) -> None:
    # 288 encodings: random search needs 144.5 evaluations on average to meet the optimum
    budget = 40
    steps = []
    for seed in range(3):
        ss = toy_space(tmp_path, seed)
        values = np.array([formula(e) for e in ss.encodings])
        optimum = int(np.argmax(values))
        s = SearchInstance("toy", None, search_space=ss, seed=seed, progress=False, hi_fi_eval=None,
                           eval_budget=budget, **options)
        found = budget + 1
        for k in range(budget):
            (p,) = s.ask(1)
            s.tell(p.index, p.fidelity, float(values[p.index]))
            if p.index == optimum:
                found = k + 1
                break
        steps.append(found)
    assert np.mean(steps) < 144.5 / 3, steps  # at least three times faster than random on average
    assert sum(x <= budget for x in steps) >= 2, steps


def test_warm_start_pretrains_on_an_earlier_search(make_grid_space, tmp_path: Path) -> None:
    space = make_grid_space(n_positions=3, n_values=4)
    first = SearchInstance("first", tmp_path / "first.json", search_space=space, seed=0, progress=False,
                           hi_fi_eval=lambda e: float(sum(e)), n_initial=3)
    first.run_search(8)
    saved = json.loads((tmp_path / "first.json").read_text())
    assert len([e for e in saved["history"] if e["fidelity"] == "hi"]) == 8
    second = SearchInstance("second", tmp_path / "second.json", search_space=space, seed=1, progress=False,
                            hi_fi_eval=lambda e: float(sum(e)), warm_start=[tmp_path / "first.json"])
    assert "warm0" in second.space.profile and "warm0" in second.space.surrogate.metric_names
    assert np.isfinite(second.space.profile["warm0"]).sum() == 8
    assert "warm0" not in space.profile  # the caller's space is left alone
    second.run_search(3)
    resumed = SearchInstance("second", tmp_path / "second.json", search_space=space, progress=False,
                             hi_fi_eval=lambda e: float(sum(e)))
    assert resumed.options["warm_start"] == [str(tmp_path / "first.json")] and "warm0" in resumed.space.profile
    with pytest.raises(ProfilingError, match="does not exist"):
        SearchInstance("third", None, search_space=space, progress=False, warm_start=[tmp_path / "missing.json"])


def test_a_warm_started_search_first_tries_the_earlier_searches_best_results(make_grid_space, tmp_path: Path) -> None:
    space = make_grid_space(n_positions=3, n_values=4)

    def value(e: tuple) -> float:
        return float(sum(e))

    for k, seed in enumerate((0, 1)):  # two earlier searches of 8 results each, saved as files
        SearchInstance(f"s{k}", tmp_path / f"s{k}.json", search_space=space, seed=seed, progress=False,
                       hi_fi_eval=value, n_initial=3).run_search(8)
    rankings = []
    for k in range(2):
        history = json.loads((tmp_path / f"s{k}.json").read_text())["history"]
        ranked = sorted(history, key=lambda e: -e["value"])
        rankings.append([space.index_of(tuple(e["encoding"])) for e in ranked])
    expected: list[int] = []  # the two rankings interleaved, each candidate once
    for rank in range(8):
        for ranking in rankings:
            if ranking[rank] not in expected:
                expected.append(ranking[rank])

    s = SearchInstance("warm", None, search_space=space, seed=5, progress=False, n_initial=6,
                       warm_start=[tmp_path / "s0.json", tmp_path / "s1.json"])
    picks = []
    for _ in range(6):
        (p,) = s.ask(1)
        assert p.reason == "initial"
        picks.append(p.index)
        s.tell(p.index, p.fidelity, value(space.encodings[p.index]))
    assert picks == expected[:6]  # the whole initial design from the warm start, best first
    half = SearchInstance("half", None, search_space=space, seed=5, progress=False, n_initial=6,
                          warm_start=[tmp_path / "s0.json", tmp_path / "s1.json"], warm_start_picks=3)
    first = [p.index for p in half.ask(6)]  # a batch: 3 from the warm start, then the design's own picks
    assert first[:3] == expected[:3] and len(set(first)) == 6 and not set(first[3:]) & set(expected[:3])
    assert first[3:] != expected[3:6]  # the rest of the batch is the design's, not more of the warm start


def test_a_bad_warm_start_picks_says_what_to_give(make_grid_space) -> None:
    space = make_grid_space(n_positions=2, n_values=3)
    for bad in (-1, 2.5, "3", True):
        with pytest.raises(SearchError, match="warm_start_picks must be None"):
            SearchInstance("s", None, search_space=space, progress=False, warm_start_picks=bad)


def test_initial_candidates_are_evaluated_first_then_the_design_then_the_bo(make_grid_space, tmp_path: Path) -> None:
    space = make_grid_space(n_positions=3, n_values=4)
    given = [17, (3, 3, 3), 2, 17, (0, 1, 2)]  # indices and encodings; a repeat is tried once
    first = [17, space.index_of((3, 3, 3)), 2, space.index_of((0, 1, 2))]
    s = SearchInstance("mine", tmp_path / "mine.json", search_space=space, seed=1, progress=False, n_initial=6,
                       initial_candidates=given)
    proposals = []
    for _ in range(8):
        (p,) = s.ask(1)
        proposals.append(p)
        s.tell(p.index, p.fidelity, float(sum(space.encodings[p.index])))
    assert [p.index for p in proposals[:4]] == first
    assert [p.reason for p in proposals] == ["initial"] * 6 + ["acquisition"] * 2
    assert len({p.index for p in proposals}) == 8
    resumed = SearchInstance("mine", tmp_path / "mine.json", search_space=space, progress=False)
    assert resumed.options["initial_candidates"] == first  # stored as indices, so a resume reads the same
    more = SearchInstance("more", None, search_space=space, seed=1, progress=False, n_initial=2,
                          initial_candidates=list(range(40, 45)))
    batch = more.ask(6)  # more candidates than n_initial: all of them before the BO
    assert [p.index for p in batch[:5]] == list(range(40, 45)) and {p.reason for p in batch[:5]} == {"initial"}


@pytest.mark.parametrize(("given", "message"), [
    ([0, 64], r"initial_candidates\[1\] = 64 is not an encoding index of the space \(0..63\)"),
    ([(0, 0, 9)], r"initial_candidates\[0\]: encoding \(0, 0, 9\) is not in search space"),
    ("12", "initial_candidates must be a list of encoding indices or encodings"),
    ([True], r"initial_candidates\[0\]"),
])
def test_bad_initial_candidates_are_refused_before_anything_is_saved(make_grid_space, tmp_path: Path, given: Any,
                                                                     message: str) -> None:
    space = make_grid_space(n_positions=3, n_values=4)
    with pytest.raises(SearchError, match=message):
        SearchInstance("s", tmp_path / "s.json", search_space=space, progress=False, initial_candidates=given)
    assert not (tmp_path / "s.json").exists()


def test_a_search_on_a_space_with_added_results_first_evaluates_their_best(make_grid_space, tmp_path: Path) -> None:
    from nastune import load_search_space
    from nastune.analysis import interleave_rankings

    space = make_grid_space(n_positions=3, n_values=4)
    accuracy = {i: float(sum(space.encodings[i])) for i in range(0, 64, 3)}  # higher is better
    loss = {i: float((i * 7) % 11) for i in range(1, 64, 5)}  # lower is better
    space.add_results("c10", accuracy)
    space.add_results("c10_loss", loss, maximize=False)
    best_accuracy = sorted(accuracy, key=lambda i: (-accuracy[i], i))
    best_loss = sorted(loss, key=lambda i: (loss[i], i))
    assert space.transfers == {"c10": best_accuracy, "c10_loss": best_loss}
    loaded = load_search_space(space.save(tmp_path / "with-results.nastune"))
    assert loaded.transfers == space.transfers  # the bundle carries them

    expected = interleave_rankings([best_accuracy, best_loss], limit=6)
    s = SearchInstance("t", None, search_space=loaded, seed=0, progress=False, n_initial=6)
    assert s.options["initial_candidates"] == expected
    assert [p.index for p in s.ask(6)] == expected
    own = SearchInstance("own", None, search_space=loaded, seed=0, progress=False, n_initial=6, initial_candidates=[])
    assert own.options["initial_candidates"] == [] and [p.index for p in own.ask(6)] != expected

    loaded.add_results("latency_phone", {i: 0.001 * (i + 1) for i in range(12)}, maximize=None)  # a metric
    assert set(loaded.transfers) == {"c10", "c10_loss"}
    small = loaded.filter(lambda encoding, metrics: encoding[0] >= 2)  # a subset keeps the rankings it holds
    kept = small.parent_indices.tolist()
    assert [kept[i] for i in small.transfers["c10"]] == [i for i in best_accuracy if space.encodings[i][0] >= 2]


def test_named_candidates_the_constraints_rule_out_do_not_lengthen_the_initial_design(make_grid_space) -> None:
    space = make_grid_space(n_positions=3, n_values=4)
    size = space.profile["size"]
    small, big = np.flatnonzero(size <= np.median(size)), np.flatnonzero(size > np.median(size))
    s = SearchInstance("c", None, search_space=space, seed=0, progress=False, n_initial=2,
                       initial_candidates=[int(big[0]), int(big[1]), int(small[0])],
                       constraints={"size": ("<=", float(np.median(size)))})
    proposals = []
    for _ in range(3):
        (p,) = s.ask(1)
        proposals.append(p)
        s.tell(p.index, p.fidelity, float(sum(space.encodings[p.index])))
    assert proposals[0].index == small[0]  # the one feasible named candidate first
    assert [p.reason for p in proposals] == ["initial", "initial", "acquisition"]  # n_initial, not 3
    assert not {p.index for p in proposals} & {int(big[0]), int(big[1])}
