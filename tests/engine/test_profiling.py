"""Profiling: params/FLOPs against hand counts, inference forms, failures, timeouts, workers, resume, data."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
from torch import nn

from nastune import PROFILE_METRICS, ProfilingError, create_search_space, profile_encodings, surrogate
from nastune.profiling import ProfileSettings, ProfileTable, inference_form, profile_network
from tests.support.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
SAMPLE = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("flops_device", ["auto", "meta", "cpu"])
def test_params_and_flops_match_hand_counts(
    tiny_module: ModuleType, tiny_encodings: list[tuple], flops_device: str
) -> None:
    table = profile_encodings(
        tiny_module.encoding_to_net, tiny_encodings, SAMPLE, latency_repeats=2, flops_device=flops_device
    )
    assert table.failures() == {}
    for i, (width, depth, _, _) in enumerate(tiny_encodings):
        assert table.metrics["params"][i] == tiny_module.tiny_params(width, depth)
        assert table.metrics["params_test"][i] == tiny_module.tiny_params(width, depth)
        assert table.metrics["flops"][i] == tiny_module.tiny_flops(width, depth, batch=2, side=8)
        assert 0 < table.metrics["latency"][i] < 1.0
        # at least the first conv's output (B x width x 8 x 8 float32) is alive at some point
        assert table.metrics["memory"][i] >= 2 * width * 64 * 4
    assert set(table.metrics) == set(PROFILE_METRICS)
    assert table.profiled.all() and np.isfinite(table.seconds).all()


def test_flops_are_counted_on_the_meta_device_without_allocating_weights() -> None:
    built_on: list[str] = []

    def encoding_to_net(encoding: int) -> nn.Module:
        net = nn.Linear(encoding, 3)
        built_on.append(net.weight.device.type)
        return net

    values, error = profile_network(encoding_to_net, 5, torch.zeros(4, 5), ProfileSettings(metrics=("params", "flops")))
    assert error is None
    assert values == {"params": 5 * 3 + 3, "flops": 2 * 4 * 5 * 3}
    assert built_on == ["meta"]


def test_modules_that_cannot_run_on_meta_fall_back_to_cpu() -> None:
    class DataDependent(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.sum().item() > -1:  # .item() is impossible on meta tensors
                x = self.fc(x)
            return x

    settings = ProfileSettings(metrics=("flops",))
    values, error = profile_network(lambda e: DataDependent(), None, torch.ones(2, 4), settings)
    assert error is None and values["flops"] == 2 * 2 * 4 * 4


class ConvBN(nn.Module):
    """Conv + BN with a fused inference form; ``mode`` picks in-place ``reparameterize`` or returning ``fuse``."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.fused: nn.Conv2d | None = None
        if mode == "fuse":
            self.fuse = self._fused_copy  # type: ignore[method-assign]
        else:
            self.reparameterize = self._fuse_in_place

    def _fused_conv(self) -> nn.Conv2d:
        conv = nn.Conv2d(3, 4, 3, bias=True)
        scale = self.bn.weight / torch.sqrt(self.bn.running_var + self.bn.eps)
        with torch.no_grad():
            conv.weight.copy_(self.conv.weight * scale[:, None, None, None])
            conv.bias.copy_(self.bn.bias - self.bn.running_mean * scale)
        return conv

    def _fused_copy(self) -> nn.Module:
        return self._fused_conv()

    def _fuse_in_place(self) -> None:
        self.fused = self._fused_conv()
        del self.conv, self.bn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fused is not None:
            return self.fused(x)
        return self.bn(self.conv(x))


@pytest.mark.parametrize("mode", ["reparameterize", "fuse"])
def test_test_time_params_use_the_inference_form(mode: str) -> None:
    values, error = profile_network(lambda e: ConvBN(mode), None, torch.rand(1, 3, 6, 6))
    assert error is None
    assert values["params"] == 4 * 3 * 9 + 2 * 4  # conv + BN affine
    assert values["params_test"] == 4 * 3 * 9 + 4  # fused conv weight + bias
    assert values["flops"] == 2 * 4 * 4 * 4 * 3 * 9


def test_inference_form_calls_reparameterize_on_submodules() -> None:
    net = nn.Sequential(ConvBN("reparameterize"), nn.ReLU(), ConvBN("reparameterize"))
    out = inference_form(net)
    assert out is net and all(m.fused is not None for m in net if isinstance(m, ConvBN))


def test_fused_form_computes_the_same_function() -> None:
    net = ConvBN("fuse").eval()
    with torch.no_grad():
        net.bn.running_mean.uniform_(-1, 1)
        net.bn.running_var.uniform_(0.5, 2)
        x = torch.rand(2, 3, 6, 6)
        torch.testing.assert_close(inference_form(net)(x), net(x), rtol=1e-5, atol=1e-5)


def test_failing_and_timed_out_encodings_are_recorded_and_the_rest_go_on(tiny_module: ModuleType) -> None:
    encodings = [(2, 1, "relu", "ok"), (4, 1, "relu", "raise"), (4, 1, "relu", "sleep"), (8, 1, "relu", "ok")]
    start = time.perf_counter()
    table = profile_encodings(tiny_module.encoding_to_net, encodings, SAMPLE, timeout_s=1.0, latency_repeats=1)
    assert time.perf_counter() - start < 15
    failures = table.failures()
    assert sorted(failures) == [1, 2]
    assert failures[1].startswith("ValueError: cannot build width 4")
    assert "timed out after 1 s" in failures[2]
    assert table.metrics["params"][0] == tiny_module.tiny_params(2, 1)
    assert table.metrics["params"][3] == tiny_module.tiny_params(8, 1)
    assert np.isnan(table.metrics["flops"][1]) and np.isnan(table.metrics["flops"][2])


def test_a_network_that_is_not_a_module_is_a_failure_not_a_crash() -> None:
    table = profile_encodings(lambda e: "not a net", [(1,)], SAMPLE)
    assert "expected a torch.nn.Module" in table.errors[0]


def test_worker_processes_survive_errors_timeouts_and_crashes(tiny_module: ModuleType) -> None:
    encodings = [
        (2, 1, "relu", "ok"),
        (4, 1, "relu", "raise"),
        (4, 1, "relu", "sleep"),
        (4, 1, "relu", "exit"),
        (8, 2, "gelu", "ok"),
        (4, 2, "relu", "ok"),
    ]
    table = profile_encodings(
        tiny_module.encoding_to_net, encodings, SAMPLE, timeout_s=2.0, threads=2, latency_repeats=1
    )
    failures = table.failures()
    assert sorted(failures) == [1, 2, 3]
    assert "ValueError" in failures[1]
    assert "timed out after 2 s (worker process killed)" in failures[2]
    assert "exit code 3" in failures[3]
    for i in (0, 4, 5):
        width, depth = encodings[i][:2]
        assert table.metrics["params"][i] == tiny_module.tiny_params(width, depth)
        assert table.metrics["flops"][i] == tiny_module.tiny_flops(width, depth, batch=2, side=8)


def test_worker_processes_need_an_importable_builder_and_say_so() -> None:
    with pytest.raises(ProfilingError, match=r"module level in a \.py file"):
        profile_encodings(lambda e: nn.Linear(1, 1), [(1,)], SAMPLE, threads=2)

    def nested(encoding: tuple) -> nn.Module:
        return nn.Linear(1, 1)

    with pytest.raises(ProfilingError, match="nested functions"):
        profile_encodings(nested, [(1,)], SAMPLE, isolate=True)


def test_proxies_are_seeded_and_reproducible(tiny_module: ModuleType, tiny_encodings: list[tuple]) -> None:
    kwargs = {"metrics": ("params",), "proxies": True, "seed": 3}
    a = profile_encodings(tiny_module.encoding_to_net, tiny_encodings[:4], SAMPLE, **kwargs)
    b = profile_encodings(tiny_module.encoding_to_net, tiny_encodings[:4], SAMPLE, **kwargs)
    c = profile_encodings(tiny_module.encoding_to_net, tiny_encodings[:4], SAMPLE, **(kwargs | {"seed": 4}))
    for proxy in ("naswot", "log_synflow"):
        assert np.isfinite(a.metrics[proxy]).all()
        np.testing.assert_array_equal(a.metrics[proxy], b.metrics[proxy])
        assert not np.array_equal(a.metrics[proxy], c.metrics[proxy])
    # wider networks separate more inputs and carry more synaptic flow
    assert a.metrics["log_synflow"][2] > a.metrics["log_synflow"][0]


def test_naswot_matches_a_direct_computation() -> None:
    from nastune.proxies import naswot_score

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 6), nn.ReLU())
    x = torch.randn(4, 5)
    with torch.no_grad():
        h1 = net[0](x)
        h2 = net[2](torch.relu(h1))
    codes = torch.cat([h1 > 0, h2 > 0], dim=1).double()
    kernel = codes @ codes.T + (1 - codes) @ (1 - codes).T
    expected = torch.linalg.slogdet(kernel)[1].item()
    assert naswot_score(net, (x,)) == pytest.approx(expected, rel=1e-12)


def test_profile_table_json_round_trip() -> None:
    table = ProfileTable.empty(2, ["params"])
    table.record(1, {"params": 7.0}, "boom", 0.5)
    again = ProfileTable.from_json_obj(json.loads(json.dumps(table.to_json_obj())))
    assert again.errors == [None, "boom"] and again.metrics["params"][1] == 7.0
    assert math.isnan(again.metrics["params"][0]) and again.profiled.tolist() == [False, True]


# -- SearchSpace.preprocess ----------------------------------------------------------------------------


def test_preprocess_profiles_a_seeded_subset_and_saves(make_tiny_space, tmp_path: Path) -> None:
    ss = make_tiny_space()
    ss.preprocess(sample_input=SAMPLE, max_profiled=5, seed=1, pretrain=False, progress=False, latency_repeats=1)
    profiled = np.flatnonzero(np.isfinite(ss.profile["params"]))
    assert len(profiled) == 5
    again = make_tiny_space()
    again.save_filename = tmp_path / "other.nastune"
    again.preprocess(sample_input=SAMPLE, fraction=0.4, seed=1, pretrain=False, progress=False, latency_repeats=1)
    assert np.flatnonzero(np.isfinite(again.profile["params"])).tolist() == profiled.tolist()  # ceil(0.4*12)=5
    assert (tmp_path / "tiny.nastune").exists() and not ss.checkpoint_path.exists()


def test_pretraining_data_replaces_profiling(tmp_path: Path) -> None:
    encodings = [(k,) for k in range(6)]
    ss = create_search_space("data", tmp_path / "data.nastune", encodings)
    ss.preprocess(pretraining_data={"params": [1, 2, None, 4, 5, 6], "latency": np.arange(6.0)}, pretrain=False)
    np.testing.assert_array_equal(ss.profile["params"], [1, 2, np.nan, 4, 5, 6])
    assert list(ss.profile) == ["params", "latency"]
    with pytest.raises(ProfilingError, match=r"has 5 values, expected 6: one value per encoding"):
        ss.preprocess(pretraining_data={"params": [1, 2, 3, 4, 5]}, pretrain=False)
    with pytest.raises(ProfilingError, match="infinite"):
        ss.preprocess(pretraining_data={"params": [1, 2, 3, 4, 5, math.inf]}, pretrain=False)
    with pytest.raises(ProfilingError, match="all NaN"):
        ss.preprocess(pretraining_data={"params": [math.nan] * 6}, pretrain=False)
    with pytest.raises(ProfilingError, match="numbers"):
        ss.preprocess(pretraining_data={"params": ["a"] * 6}, pretrain=False)
    with pytest.raises(ProfilingError, match="not allowed"):
        ss.preprocess(pretraining_data={"bad,name": [1.0] * 6}, pretrain=False)


def test_pretraining_data_path_pretrains_the_surrogate(tmp_path: Path) -> None:
    assert hasattr(surrogate, "DeepEnsemble")
    encodings = [(a, b) for a in range(6) for b in range(6)]
    params = np.array([a * 10.0 + b for a, b in encodings])
    ss = create_search_space("data", tmp_path / "data.nastune", encodings)
    ss.preprocess(pretraining_data={"params": params}, n_members=2, progress=False)
    mean, std = ss.predict(np.arange(len(encodings)))["params"]
    assert mean.shape == std.shape == (36,)
    assert np.corrcoef(mean, params)[0, 1] > 0.8


RESUME_SCRIPT = textwrap.dedent(
    """
    import sys, torch
    from nastune import create_search_space
    import {module} as tiny

    encodings = [(w, d, "relu", "slow") for w in (2, 3, 4, 5) for d in (1, 2, 3)]
    ss = create_search_space("resume", sys.argv[1], encodings, tiny.encoding_to_net)
    sample = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    ss.preprocess(sample_input=sample, pretrain=False, progress=False, latency_repeats=1)
    """
)


def test_killed_preprocess_resumes_without_reprofiling_finished_encodings(
    tiny_module: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = tmp_path / "resume.nastune"
    checkpoint = tmp_path / "resume.nastune.profiling.jsonl"
    calls_1, calls_2 = tmp_path / "calls1.txt", tmp_path / "calls2.txt"
    script = tmp_path / "run.py"
    script.write_text(RESUME_SCRIPT.format(module=tiny_module.__name__))
    env = os.environ | {
        "PYTHONPATH": os.pathsep.join([str(REPO), str(Path(tiny_module.__file__).parent)]),
        "NASTUNE_TEST_CALLS": str(calls_1),
    }
    proc = subprocess.Popen([sys.executable, str(script), str(bundle)], env=env, cwd=tmp_path)
    try:
        def four_encodings_profiled() -> bool:
            lines = checkpoint.read_text().splitlines() if checkpoint.exists() else []
            profiled = len(lines) >= 1 + 4  # header + 4 finished encodings
            assert profiled or proc.poll() is None, "the profiling subprocess ended before it could be killed"
            return profiled

        wait_until(four_encodings_profiled, 60, interval=0.05, message="profiling did not get going")
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert not bundle.exists()
    done = {json.loads(line)["i"] for line in checkpoint.read_text().splitlines()[1:] if line.endswith("}")}
    assert 4 <= len(done) < 12

    monkeypatch.setenv("NASTUNE_TEST_CALLS", str(calls_2))
    monkeypatch.setattr(tiny_module, "CALLS", str(calls_2))
    encodings = [(w, d, "relu", "slow") for w in (2, 3, 4, 5) for d in (1, 2, 3)]
    ss = create_search_space("resume", bundle, encodings, tiny_module.encoding_to_net)
    ss.preprocess(sample_input=resume_sample(), pretrain=False, progress=False, latency_repeats=1)
    rebuilt = {encodings.index(tuple(_parse_call(line))) for line in calls_2.read_text().splitlines()}
    assert rebuilt.isdisjoint(done)
    assert rebuilt | done == set(range(12))
    assert np.isfinite(ss.profile["params"]).all() and ss.failures == {}
    assert bundle.exists() and not checkpoint.exists()


def resume_sample() -> torch.Tensor:
    """The very sample input of RESUME_SCRIPT (the checkpoint is only reused for the same input)."""
    return torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))


def _parse_call(line: str) -> tuple:
    width, depth, act, behaviour = line.split(",")
    return (int(width), int(depth), act, behaviour)


def test_a_checkpoint_from_other_settings_is_not_reused(make_tiny_space, tmp_path: Path) -> None:
    ss = make_tiny_space()
    ss.checkpoint_path.write_text('{"nastune_profile_checkpoint": 1, "space": "other"}\n{"i": 0, "v": {"params": 1}}\n')
    ss.preprocess(sample_input=SAMPLE, metrics=("params",), pretrain=False, progress=False)
    assert ss.profile["params"][0] != 1


def test_preprocess_checks_the_bundle_folder_before_profiling(make_tiny_space, tmp_path: Path) -> None:
    ss = make_tiny_space()
    ss.save_filename = tmp_path / "missing" / "tiny.nastune"
    with pytest.raises(ProfilingError, match="does not exist; create it first"):
        ss.preprocess(sample_input=SAMPLE, pretrain=False, progress=False)
