"""Device latency: metrics named after the device (CPU twin of the GPU path), user-uploaded latencies for a subset."""

from __future__ import annotations

import itertools
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

from nastune import SearchInstance, create_search_space
from nastune.device_latency import (
    DeviceLatencyError,
    add_device_latencies,
    device_metric_name,
    held_out_tau,
    parse_latency_csv,
)
from nastune.errors import ProfilingError
from nastune.profiling import device_latency_metric, latency_metric_name, measure_device_latency, profile_encodings
from tests.engine.conftest import FAST_SURROGATE


@pytest.mark.parametrize("device_type, name, metric", [
    ("cuda", "NVIDIA H200", "latency_cuda_h200"),
    ("cuda", "NVIDIA GeForce RTX 4090", "latency_cuda_rtx_4090"),
    ("cpu", "Intel(R) Xeon(R) Platinum 8480C CPU @ 2.00GHz", "latency_cpu_xeon_platinum_8480c"),
    ("cpu", "AMD EPYC 7763 64-Core Processor", "latency_cpu_epyc_7763_64"),
    ("cpu", "", "latency_cpu_unknown"),
])
def test_the_latency_metric_is_named_after_the_device(device_type: str, name: str, metric: str) -> None:
    assert latency_metric_name(device_type, name) == metric


def test_this_machines_cpu_names_its_latency_metric() -> None:
    name = device_latency_metric("cpu")
    assert name.startswith("latency_cpu_") and name == name.lower() and " " not in name


def test_a_cuda_latency_without_a_gpu_says_where_to_profile() -> None:
    if torch.cuda.is_available():
        assert device_latency_metric("cuda").startswith("latency_cuda_")
    else:
        with pytest.raises(ProfilingError, match="gpu worker"):
            device_latency_metric("cuda")


def test_profiling_with_a_latency_device_adds_the_named_column(tiny_module: ModuleType,
                                                               tiny_encodings: list[tuple]) -> None:
    table = profile_encodings(tiny_module.encoding_to_net, tiny_encodings[:3], torch.rand(2, 3, 8, 8),
                              metrics=("params", "latency"), latency_device="cpu", latency_repeats=3)
    column = table.metrics[device_latency_metric("cpu")]
    assert column.shape == (3,) and np.all(column > 0) and np.all(np.isfinite(column))
    assert "latency" in table.metrics  # the worker-CPU latency stays as it was


@pytest.mark.parametrize("metrics", [("params",), ()])
def test_a_latency_device_is_measured_when_no_cpu_metric_is_asked(tiny_module: ModuleType,
                                                                   tiny_encodings: list[tuple],
                                                                   metrics: tuple[str, ...]) -> None:
    # params alone are counted on the meta device; the device latency still needs a real network
    table = profile_encodings(tiny_module.encoding_to_net, tiny_encodings[:2], torch.rand(2, 3, 8, 8),
                              metrics=metrics, latency_device="cpu", latency_repeats=2)
    column = table.metrics[device_latency_metric("cpu")]
    assert np.all(np.isfinite(column)) and np.all(column > 0)
    assert "latency" not in table.metrics


def test_device_latency_is_the_median_of_timed_forwards_on_cpu() -> None:
    class Slow(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            import time

            time.sleep(0.01)
            return x

    seconds = measure_device_latency(Slow(), [torch.zeros(1)], "cpu", repeats=3, warmup=0)
    assert 0.009 <= seconds < 0.5


def test_an_unknown_latency_device_is_refused(tiny_module: ModuleType, tiny_encodings: list[tuple]) -> None:
    with pytest.raises(ProfilingError, match="latency_device must be"):
        profile_encodings(tiny_module.encoding_to_net, tiny_encodings[:1], torch.rand(1, 3, 8, 8),
                          latency_device="meta")


# -- uploaded latencies ---------------------------------------------------------------------------------------
def grid(tmp_path: Path) -> object:
    encodings = list(itertools.product(range(5), repeat=4))  # 625
    space = create_search_space("grid", tmp_path / "grid.nastune", encodings)
    m = np.asarray(encodings, dtype=float)
    space.profile["params"] = 1000 * (1 + m.sum(1)) + 50 * m[:, 0]
    return space


def device_truth(encoding: tuple) -> float:
    """A device where the first two positions cost most (not the same order as params)."""
    return 1e-3 * (1 + 3 * encoding[0] + 2 * encoding[1] + 0.5 * encoding[2] + 0.1 * encoding[3])


def test_the_csv_reads_indices_or_encodings() -> None:
    space = grid_space_small()
    assert parse_latency_csv("index,latency\n0,0.001\n7,2e-3\n", space) == {0: 0.001, 7: 0.002}
    assert parse_latency_csv("encoding,value\n\"[0, 0, 1]\",0.5\n1 1 1,0.25\n", space) == {1: 0.5, 13: 0.25}


def grid_space_small() -> object:
    return create_search_space("small", None, list(itertools.product(range(3), repeat=3)))


@pytest.mark.parametrize("text, row, fragment", [
    ("index,latency\n0,0.001\n99,0.002\n", 3, "index 99 is outside the space (0..26)"),
    ("index,latency\n0,0.001\n1,fast\n", 3, "latency 'fast' is not a number"),
    ("index,latency\nabc,0.001\n", 2, "index 'abc' is not an integer"),
    ("index,latency\n0,0.001\n1,-1\n", 3, "finite positive"),
    ("index,latency\n0,0.001\n0,0.002\n", 3, "given twice"),
    ("encoding,latency\n\"[9, 9, 9]\",0.1\n", 2, "not in the space"),
    ("idx,lat\n0,1\n", 1, "needs 'index' or 'encoding'"),
])
def test_a_bad_row_is_refused_naming_the_row(text: str, row: int, fragment: str) -> None:
    with pytest.raises(DeviceLatencyError) as caught:
        parse_latency_csv(text, grid_space_small())
    assert caught.value.row == row and fragment in str(caught.value) and str(caught.value).startswith(f"row {row}:")


def test_a_device_name_becomes_a_latency_metric() -> None:
    assert device_metric_name("Pixel 7 (CPU)") == "latency_pixel_7_cpu"
    assert device_metric_name("latency_jetson_orin") == "latency_jetson_orin"
    with pytest.raises(DeviceLatencyError, match="name the device"):
        device_metric_name("  ")


def test_latencies_of_a_subset_teach_the_surrogate_the_rest_and_a_search_can_constrain_them(tmp_path: Path) -> None:
    space = grid(tmp_path)
    rng = np.random.default_rng(0)
    subset = rng.choice(len(space), size=125, replace=False)  # 20%
    name = add_device_latencies(space, "phone", {int(i): device_truth(space.encodings[int(i)]) for i in subset})
    assert name == "latency_phone" and np.isfinite(space.profile[name]).sum() == 125
    assert space.transfers == {}  # a measured metric, not results a search should start from
    options = {**FAST_SURROGATE, "pretrain_epochs": 30}
    space.pretrain(seed=0, progress=False, **options)
    quality = held_out_tau(space, name, **options)
    assert quality["n"] == 25 and quality["tau"] > 0.5  # 20% of the 125 uploaded values, never seen
    # the rest is predicted: Kendall tau of the prediction on encodings never uploaded
    from scipy.stats import kendalltau

    rest = np.setdiff1d(np.arange(len(space)), subset)
    predicted = space.predict(rest)[name][0]
    truth = np.array([device_truth(space.encodings[int(i)]) for i in rest])
    assert kendalltau(predicted, truth).statistic > 0.6
    bound = float(np.percentile(truth, 25))
    s = SearchInstance("dev", None, search_space=space, hi_fi_eval=lambda e: float(sum(e)), seed=0, progress=False,
                       n_initial=4, constraints={name: ("<=", bound)})
    s.run_search(10)
    assert device_truth(s.best[0]) <= bound * 1.5


def test_too_few_uploaded_latencies_are_refused(tmp_path: Path) -> None:
    space = grid(tmp_path)
    with pytest.raises(DeviceLatencyError, match="at least 10"):
        add_device_latencies(space, "phone", {0: 0.1, 1: 0.2})
    assert "latency_phone" not in space.profile
