"""Digits example space: encodings, the CNN, the fixed stratified split, training and the table loader."""

from __future__ import annotations

import csv
import hashlib
import lzma
from pathlib import Path

import numpy as np
import pytest
import torch

from examples.digits import (
    CHOICES,
    COLUMNS,
    FIDELITY_EPOCHS,
    SEEDS,
    build_encodings,
    decode,
    default_table_path,
    encoding_index,
    encoding_to_net,
    load_split,
    load_table,
    split_indices,
    to_hf_dataset,
    train_and_evaluate,
)
from nastune.profiling import count_flops as measured_flops
from nastune.space import validate_encodings

N = 1_152


def test_the_space_has_1152_distinct_encodings_in_a_fixed_order() -> None:
    encodings = build_encodings()
    assert len(encodings) == N == len(set(encodings))
    assert encodings == build_encodings()
    assert encodings[0] == (1, 8, 3, "relu", 0, "none", "none")
    assert encodings[-1] == (4, 32, 5, "sigmoid", 1, "avg", "batch")
    assert [encoding_index(e) for e in encodings] == list(range(N))


def test_the_space_mixes_numeric_and_categorical_positions_for_nastune() -> None:
    validated = validate_encodings(build_encodings())
    assert validated.kinds == ("int", "int", "int", "str", "int", "str", "str")


@pytest.mark.parametrize(
    ("encoding", "message"),
    [
        ((1, 8, 3, "relu", 0, "none"), "must have 7 positions"),
        ((5, 8, 3, "relu", 0, "none", "none"), "'n_blocks' is 5"),
        ((1, 8, 3, "swish", 0, "none", "none"), "'activation' is 'swish'"),
        ((1, 8, 3, "relu", True, "none", "none"), "'skip' is True"),
        ((1, "8", 3, "relu", 0, "none", "none"), "'width' is '8'"),
    ],
)
def test_a_bad_encoding_is_refused_with_the_position_named(encoding: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        encoding_to_net(encoding)


def test_json_floats_for_integer_positions_are_accepted() -> None:
    assert decode([2.0, 16.0, 3.0, "gelu", 1.0, "max", "batch"]) == (2, 16, 3, "gelu", 1, "max", "batch")


@pytest.mark.parametrize("index", [0, 1, 137, 600, 1000, N - 1])
def test_every_net_maps_8x8_images_to_class_logits(index: int) -> None:
    encoding = build_encodings()[index]
    torch.manual_seed(0)
    net = encoding_to_net(encoding, n_classes=10).eval()
    with torch.no_grad():
        out = net(torch.rand(5, 1, 8, 8))
    assert out.shape == (5, 10)
    assert torch.isfinite(out).all()
    assert encoding_to_net(encoding, n_classes=3)(torch.rand(2, 1, 8, 8)).shape == (2, 3)
    assert measured_flops(net, [torch.zeros(1, 1, 8, 8)]) > 0


def _n_params(encoding: tuple) -> int:
    return sum(p.numel() for p in encoding_to_net(encoding).parameters())


def _flops(encoding: tuple) -> float:
    return measured_flops(encoding_to_net(encoding), [torch.zeros(1, 1, 8, 8)])


def test_width_norm_and_pooling_change_the_network() -> None:
    base = (2, 16, 3, "relu", 0, "none", "none")
    assert _n_params((2, 32, 3, "relu", 0, "none", "none")) > _n_params(base)
    assert _n_params((2, 16, 3, "relu", 0, "none", "batch")) != _n_params(base)
    assert _flops((2, 16, 3, "relu", 0, "max", "none")) < _flops(base)
    assert _flops((3, 16, 3, "relu", 0, "none", "none")) > _flops(base)


def test_the_split_is_fixed_disjoint_complete_and_stratified() -> None:
    split = load_split()
    parts = (split.idx_train, split.idx_valid, split.idx_test)
    assert [len(p) for p in parts] == [1078, 359, 360]
    assert len(np.unique(np.concatenate(parts))) == 1797
    # the committed table was trained on exactly this split; a change here invalidates it
    digests = [hashlib.sha256(p.astype("<i8").tobytes()).hexdigest()[:16] for p in parts]
    assert digests == ["0abfcfb0ccc8e1a4", "1875775c17056b3c", "ae36631b162cb7c9"]
    labels = np.concatenate([split.y_train, split.y_valid, split.y_test])
    overall = np.bincount(labels, minlength=10) / len(labels)
    for y, n in ((split.y_train, 1078), (split.y_valid, 359), (split.y_test, 360)):
        assert np.all(np.abs(np.bincount(y, minlength=10) - overall * n) <= 1.0)
    assert split.x_train.shape == (1078, 1, 8, 8) and split.x_train.dtype == np.float32
    assert split.x_train.min() >= 0.0 and split.x_train.max() <= 1.0
    same = load_split()
    np.testing.assert_array_equal(same.idx_valid, split.idx_valid)


def test_the_hugging_face_export_holds_the_same_split() -> None:
    split = load_split()
    exported = to_hf_dataset()
    assert [len(exported[k]) for k in ("train", "validation", "test")] == [1078, 359, 360]
    assert exported["train"].features["label"].num_classes == 10
    np.testing.assert_array_equal(exported["validation"]["label"], split.y_valid)
    first = np.asarray(exported["test"][0]["image"], dtype=np.float64) / 255.0
    np.testing.assert_allclose(first, split.x_test[0, 0], atol=1 / 255)


def test_an_rgb_net_of_any_size_serves_the_image_classification_evaluator() -> None:
    net = encoding_to_net((2, 8, 3, "gelu", 1, "avg", "batch"), n_classes=10, in_channels=3).eval()
    assert net(torch.rand(2, 3, 32, 32)).shape == (2, 10)


def test_split_indices_rejects_empty_labels() -> None:
    with pytest.raises(ValueError, match="non-empty 1-D"):
        split_indices(np.array([], dtype=np.int64))


def test_training_is_seeded_and_learns() -> None:
    torch.set_num_threads(1)
    split = load_split()
    encoding = (1, 16, 3, "relu", 1, "max", "batch")
    first = train_and_evaluate(encoding, 2, seed=0, split=split)
    again = train_and_evaluate(encoding, 2, seed=0, split=split)
    other = train_and_evaluate(encoding, 2, seed=1, split=split)
    assert (first.valid_acc, first.test_acc) == (again.valid_acc, again.test_acc)
    assert (first.valid_acc, first.test_acc) != (other.valid_acc, other.test_acc)
    assert first.valid_acc > 20.0  # chance is 10 %
    assert first.params == sum(p.numel() for p in encoding_to_net(encoding).parameters())
    with pytest.raises(ValueError, match="epochs must be at least 1"):
        train_and_evaluate(encoding, 0, seed=0, split=split)


def _synthetic_rows() -> list[list[object]]:
    """A complete table whose values encode (index, fidelity, seed), so alignment errors show."""
    rows: list[list[object]] = []
    for i, encoding in enumerate(build_encodings()):
        for f, (fidelity, epochs) in enumerate(FIDELITY_EPOCHS.items()):
            for seed in SEEDS:
                acc = (i % 90) + f * 5 + seed
                rows.append(
                    [i, *encoding, fidelity, epochs, seed, acc, acc + 0.5, 100 + i, 1000 + 2 * i, 0.1 * (seed + 1)]
                )
    return rows


def _write(path: Path, rows: list[list[object]], header: tuple[str, ...] = COLUMNS) -> Path:
    opener = lzma.open if path.suffix == ".xz" else open
    with opener(path, "wt", newline="", encoding="utf-8") as fh:  # type: ignore[operator]
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows[::-1])  # any row order must load
    return path


@pytest.mark.parametrize("name", ["t.csv", "t.csv.xz"])
def test_the_loader_aligns_a_synthetic_table_to_build_encodings(tmp_path: Path, name: str) -> None:
    table = load_table(_write(tmp_path / name, _synthetic_rows()))
    assert len(table) == N and table.encodings == build_encodings()
    assert table.seeds == SEEDS and table.epochs == FIDELITY_EPOCHS
    i = np.arange(N)
    np.testing.assert_allclose(table.valid_acc_seeds["lo"][:, 2], (i % 90) + 2)
    np.testing.assert_allclose(table.valid_acc["lo"], (i % 90) + 1)
    np.testing.assert_allclose(table.valid_acc["hi"], (i % 90) + 6)
    np.testing.assert_allclose(table.test_acc["hi"], (i % 90) + 6.5)
    np.testing.assert_allclose(table.wall_s["lo"], np.full(N, 0.2))
    np.testing.assert_array_equal(table.params, 100 + i)
    np.testing.assert_allclose(table.flops, 1000 + 2 * i)
    assert table.best_index("hi") == 89
    assert table.best_index("lo", split="test") == 89


def test_the_loader_names_a_missing_run(tmp_path: Path) -> None:
    rows = _synthetic_rows()
    del rows[7]  # index 1, lo, seed 1
    with pytest.raises(ValueError, match=r"lacks 1 runs, the first \(index 1, lo, seed 1\)"):
        load_table(_write(tmp_path / "t.csv", rows))


def test_the_loader_refuses_a_duplicate_run(tmp_path: Path) -> None:
    rows = _synthetic_rows()
    rows.append(list(rows[0]))
    with pytest.raises(ValueError, match="appears twice"):
        load_table(_write(tmp_path / "t.csv", rows))


def test_the_loader_refuses_a_row_whose_encoding_is_not_its_index(tmp_path: Path) -> None:
    rows = _synthetic_rows()
    rows[0][4] = "gelu"
    with pytest.raises(ValueError, match=r"is not build_encodings\(\)\[0\]"):
        load_table(_write(tmp_path / "t.csv", rows))


def test_the_loader_refuses_a_wrong_header_and_epochs(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="header"):
        load_table(_write(tmp_path / "h.csv", _synthetic_rows(), header=COLUMNS[:-1]))
    rows = _synthetic_rows()
    rows[0][9] = 3
    with pytest.raises(ValueError, match="fidelity 'lo' with 3 epochs"):
        load_table(_write(tmp_path / "e.csv", rows))
    with pytest.raises(FileNotFoundError, match="build_table"):
        load_table(tmp_path / "absent.csv.xz")


def test_choices_cover_the_documented_fields() -> None:
    assert [len(c) for c in CHOICES] == [4, 3, 2, 4, 2, 3, 2]


def test_the_committed_table_loads_and_its_params_match_the_networks() -> None:
    assert default_table_path().name == "digits_table.csv.xz"
    table = load_table()
    assert len(table) == N and table.seeds == (0, 1, 2)
    for fidelity in FIDELITY_EPOCHS:
        assert np.all((table.valid_acc_seeds[fidelity] >= 0) & (table.valid_acc_seeds[fidelity] <= 100))
        assert np.all(table.wall_s_seeds[fidelity] > 0)
    for index in (0, 500, N - 1):
        net = encoding_to_net(table.encodings[index])
        assert table.params[index] == sum(p.numel() for p in net.parameters())
        assert table.flops[index] == measured_flops(net, [torch.zeros(1, 1, 8, 8)])
    # the benchmark is useful only if the space is neither flat nor saturated
    hi = table.valid_acc["hi"]
    assert hi.max() - np.median(hi) > 5.0 and hi.max() < 100.0
    assert float(np.mean(table.wall_s["hi"])) > float(np.mean(table.wall_s["lo"]))
