"""NAS-Bench-201 example: encodings, the real network's parameters vs. the benchmark, analytic FLOPs, table."""

from __future__ import annotations

import lzma
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from examples.nb201 import (
    DATASETS,
    N_CLASSES,
    OPS,
    arch_str,
    build_encodings,
    count_flops,
    count_flops_matrix,
    count_params,
    count_params_matrix,
    encoding_index,
    encoding_to_net,
    features,
    load_table,
    ops_code,
)
from examples.nb201.table import BUNDLED_CSV, default_csv_path
from nastune.profiling import count_flops as measured_flops
from nastune.profiling import count_parameters


@pytest.fixture(scope="module")
def table():
    return load_table()


def test_the_table_ships_inside_the_project_and_is_the_default(monkeypatch) -> None:
    monkeypatch.delenv("NASWEB_NB201_CSV", raising=False)
    repo = Path(__file__).resolve().parents[2]
    assert default_csv_path() == BUNDLED_CSV and BUNDLED_CSV.is_relative_to(repo)
    assert BUNDLED_CSV.stat().st_size < 1_200_000  # xz-compressed; the plain CSV is 5.3 MB
    assert (BUNDLED_CSV.parent / "PROVENANCE.md").exists()


def test_a_plain_csv_named_by_the_variable_reads_the_same(monkeypatch, tmp_path, table) -> None:
    plain = tmp_path / "nb201_merged.csv"
    with lzma.open(BUNDLED_CSV, "rb") as src:
        plain.write_bytes(src.read())
    monkeypatch.setenv("NASWEB_NB201_CSV", str(plain))
    other = load_table()
    np.testing.assert_array_equal(other.encodings, table.encodings)
    np.testing.assert_array_equal(other.valid_acc["cifar10"], table.valid_acc["cifar10"])
    assert other.iso_str == table.iso_str


def test_a_missing_table_names_the_variable(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="NASWEB_NB201_CSV"):
        load_table(tmp_path / "missing.csv.xz")


def test_the_space_has_every_cell_once_in_ops_code_order() -> None:
    encodings = build_encodings()
    assert len(encodings) == 15_625 == len(set(encodings))
    assert encodings[0] == (0,) * 6 and encodings[-1] == (4,) * 6
    assert [encoding_index(e) for e in encodings] == list(range(15_625))
    assert ops_code((4, 2, 1, 2, 1, 1)) == "421211"
    assert OPS == ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")


def test_table_rows_follow_build_encodings_and_match_the_benchmark_strings(table) -> None:
    encodings = build_encodings()
    assert len(table) == 15_625
    np.testing.assert_array_equal(table.encodings, np.array(encodings))
    assert [arch_str(e) for e in encodings[:: 101]] == table.arch_str[:: 101]
    # SOURCE.md: best cifar10-valid is arch 6111 at 91.6067; ImageNet16-120 valid best is arch 10676
    assert table.arch_index[table.best_index("cifar10")] == 6111
    assert table.valid_acc["cifar10"].max() == pytest.approx(91.6067)
    assert table.arch_index[table.best_index("imagenet16")] == 10676
    assert table.arch_index[table.best_index("cifar100", split="test")] == 9930
    seeds = table.valid_acc_seeds["cifar10"]
    n_seeds = np.isfinite(seeds).sum(axis=1)
    assert set(n_seeds.tolist()) == {2, 3} and (n_seeds == 3).sum() == 8169
    np.testing.assert_allclose(np.nanmean(seeds, axis=1), table.valid_acc["cifar10"], atol=2e-3)


def test_network_params_match_the_benchmark_on_200_sampled_architectures(table) -> None:
    rng = random.Random(201)
    sample = rng.sample(range(15_625), 200)
    corrupted_in_sample = []
    for i in sample:
        encoding = tuple(int(v) for v in table.encodings[i])
        with torch.device("meta"):
            net = encoding_to_net(encoding)
        params = count_parameters(net)
        assert params == count_params(encoding)
        benchmark = table.params["cifar10"][i]
        if table.params_corrupted[i]:
            corrupted_in_sample.append(i)
            continue
        assert abs(params - benchmark) <= 0.01 * benchmark, (encoding, params, benchmark)
        assert abs(params - benchmark) <= 1e-5 * benchmark  # exact up to the CSV's 6 significant digits
    # rows the benchmark got wrong (NATS-Bench issue #36) hold a count no NB201 cell has
    achievable = set(count_params_matrix(table.encodings).tolist())
    for i in corrupted_in_sample:
        assert all(abs(a - table.params["cifar10"][i]) > 1e-5 * a for a in achievable)
    assert len(corrupted_in_sample) <= 10


def test_analytic_params_match_every_uncorrupted_benchmark_row_on_every_dataset(table) -> None:
    assert int(table.params_corrupted.sum()) == 204  # 1.3%: NATS-Bench hp=200 cost-info defect
    ok = ~table.params_corrupted
    for dataset in DATASETS:
        ours = count_params_matrix(table.encodings, N_CLASSES[dataset]).astype(float)
        np.testing.assert_allclose(ours[ok], table.params[dataset][ok], rtol=1e-5)


@pytest.mark.parametrize(
    ("encoding", "side", "n_classes"),
    [((0,) * 6, 32, 10), ((3,) * 6, 32, 10), ((2, 4, 1, 3, 0, 2), 32, 100), ((3, 1, 2, 4, 3, 0), 16, 120)],
)
def test_analytic_flops_match_flop_counter_mode(encoding: tuple, side: int, n_classes: int) -> None:
    with torch.device("meta"):  # FlopCounterMode counts the same on meta tensors, without the compute
        net = encoding_to_net(encoding, n_classes=n_classes).eval()
        counted = measured_flops(net, [torch.zeros(2, 3, side, side)])
    assert counted == count_flops(encoding, side, n_classes, batch=2)
    assert count_flops_matrix([encoding], side, n_classes)[0] == count_flops(encoding, side, n_classes)


def test_network_runs_and_none_cells_still_produce_logits() -> None:
    for encoding in [(0,) * 6, (1, 4, 0, 3, 2, 1)]:
        out = encoding_to_net(encoding, n_classes=7)(torch.rand(2, 3, 32, 32))
        assert out.shape == (2, 7) and torch.isfinite(out).all()


def test_features_map_live_paths() -> None:
    encodings = build_encodings()
    f = features(encodings)
    assert f.shape == (15_625, 121) and f.dtype == np.float32
    np.testing.assert_array_equal(f[:, :30].sum(axis=1), 6.0)
    disconnected = encoding_index((0, 0, 0, 0, 3, 3))  # no edge leaves node 0 towards node 3
    assert f[disconnected, 30:114].sum() == 0 and f[disconnected, -2] == 0
    full_conv = encoding_index((3,) * 6)
    assert f[full_conv, 30:114].sum() == 4 and f[full_conv, -2] == 1.0 and f[full_conv, -1] == 1.0
    # an op on a dead edge changes the one-hot part only
    a, b = encoding_index((3, 0, 2, 3, 0, 0)), encoding_index((3, 0, 4, 3, 0, 0))
    np.testing.assert_array_equal(f[a, 30:114], f[b, 30:114])
    assert not np.array_equal(f[a, :30], f[b, :30])
