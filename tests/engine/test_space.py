"""SearchSpace: encoding validation, feature inference and overrides, lookup, filtering, a million encodings."""

from __future__ import annotations

import itertools
import logging
import math
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from nastune import EncodingError, NastuneError, ProfilingError, create_search_space
from nastune.space import Encodings, validate_encodings


def make(encodings: object, tmp_path: Path, **kwargs: object):
    return create_search_space("s", tmp_path / "s.nastune", encodings, **kwargs)  # type: ignore[arg-type]


# -- validation ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encodings", "fragments"),
    [
        ([], ["empty"]),
        ([(1, 2), (1, 2, 3)], ["encoding 1", "length 3", "expected 2"]),
        ([(1, 2), (3, 4), (1, 2)], ["encoding 2", "duplicate of encoding 0", "unique"]),
        ([(1, 2), (3, None)], ["encoding 1", "None", "position 1", "JSON scalars"]),
        ([(1, 2.5), (3, math.nan)], ["encoding 1", "nan", "NaN and infinity"]),
        ([(1, 2.5), (3, math.inf)], ["encoding 1", "inf"]),
        ([(1, [2]), (3, [4])], ["encoding 0", "list", "position 1"]),
        ([(1, {"a": 1})], ["encoding 0", "dict"]),
        ([(1, 2), "ab"], ["encoding 1", "list or tuple"]),
        ([(1, 2), 7], ["encoding 1"]),
        ([(), ()], ["length 0"]),
        ([(1, 2**70)], ["encoding 0", "64-bit"]),
        ("abc", ["list of equal-length sequences"]),
        ({"a": (1,)}, ["list of equal-length sequences"]),
        ([(1, b"x")], ["encoding 0", "bytes"]),
    ],
)
def test_invalid_encodings_raise_encoding_error_naming_the_problem(
    encodings: object, fragments: list[str], tmp_path: Path
) -> None:
    with pytest.raises(EncodingError) as info:
        make(encodings, tmp_path)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_duplicate_error_names_the_first_repeat_among_many(tmp_path: Path) -> None:
    encodings = [(i, "x") for i in range(1000)] + [(500, "x"), (3, "x")]
    with pytest.raises(EncodingError, match=r"encoding 1000 \(500, 'x'\) is a duplicate of encoding 500"):
        make(encodings, tmp_path)


def test_bool_and_int_are_distinct_values_but_int_and_float_are_not(tmp_path: Path) -> None:
    make([(True, "a"), (1, "a")], tmp_path)  # JSON true != 1
    with pytest.raises(EncodingError, match="duplicate"):
        make([(1, "a"), (1.0, "a")], tmp_path)  # JSON 1 == 1.0


def test_valid_encodings_keep_their_values_and_kinds(tmp_path: Path) -> None:
    encodings = [(1, 0.5, "relu", True), (2, 1.5, "gelu", False), (3, 0.25, "relu", True)]
    ss = make(encodings, tmp_path)
    assert ss.encodings.kinds == ("int", "float", "str", "bool")
    assert list(ss.encodings) == encodings
    assert ss.encodings[1] == (2, 1.5, "gelu", False)
    assert all(type(v) is t for v, t in zip(ss.encodings[2], (int, float, str, bool), strict=True))
    assert ss.encodings == encodings
    assert len(ss) == 3


def test_numpy_arrays_and_numpy_scalars_are_accepted(tmp_path: Path) -> None:
    ss = make(np.array([[1, 2], [3, 4]]), tmp_path)
    assert ss.encodings.kinds == ("int", "int") and ss.encodings[1] == (3, 4)
    ss = make([(np.int64(1), np.float32(0.5)), (np.int64(2), np.float32(0.25))], tmp_path)
    assert ss.encodings.tolist() == [(1, 0.5), (2, 0.25)]
    with pytest.raises(EncodingError, match="encoding 1"):
        make(np.array([[1.0, 2.0], [np.nan, 1.0]]), tmp_path)


def test_mixed_position_is_kept_as_categorical(tmp_path: Path) -> None:
    ss = make([(1, "a"), ("1", "a"), (True, "a")], tmp_path)
    assert ss.encodings.kinds[0] == "mixed"
    assert ss.feature_spec is not None
    assert ss.feature_spec[0]["kind"] == "onehot" and len(ss.feature_spec[0]["values"]) == 3


# -- lookup --------------------------------------------------------------------------------------------


def test_index_of_finds_every_encoding_and_rejects_unknown_ones(tmp_path: Path) -> None:
    encodings = [(w, k, a) for w in (0.5, 1.0, 2.0) for k in (3, 5) for a in ("relu", "gelu")]
    ss = make(encodings, tmp_path)
    for i, enc in enumerate(encodings):
        assert ss.index_of(enc) == i
        assert ss.index_of(list(enc)) == i
    assert ss.index_of((1, 3, "gelu")) == encodings.index((1.0, 3, "gelu"))  # 1 == 1.0
    assert ss.indices_of([(2.0, 5, "relu"), (9.0, 5, "relu"), (2.0, 5, 1)]).tolist() == [10, -1, -1]
    with pytest.raises(EncodingError, match="not in search space"):
        ss.index_of((0.5, 3, "tanh"))
    with pytest.raises(EncodingError, match="not an encoding"):
        ss.index_of("abc")


# -- features ------------------------------------------------------------------------------------------


def test_features_are_inferred_per_position(tmp_path: Path) -> None:
    encodings = [
        (op, width, act, flag, channels)
        for op in range(5)
        for width in (0.25 * k for k in range(1, 17))
        for act in ("relu", "gelu")
        for flag in (True, False)
        for channels in ((8, 1024) if op < 2 else (16, 64))
    ]
    ss = make(encodings, tmp_path)
    kinds = [s["kind"] for s in ss.feature_spec]
    # 5 distinct ints -> one-hot; 16 floats -> numeric; strings -> one-hot; bool -> binary;
    # positive numbers spanning 8..1024 (x128) -> log
    assert kinds == ["onehot", "numeric", "onehot", "binary", "onehot"]
    assert ss.features.dtype == np.float32
    # the spec's columns, then the ordinal columns of the int positions with 5 and 4 values (nastune.features)
    assert ss.features.shape == (len(encodings), 5 + 1 + 2 + 1 + 4 + 2)
    assert ss.feature_names[13:] == ["0 (ordinal)", "4 (ordinal)"]
    np.testing.assert_array_equal(ss.features[:, :5].sum(axis=1), 1.0)
    width = ss.features[:, 5]
    assert abs(float(width.mean())) < 1e-5 and abs(float(width.std()) - 1.0) < 1e-4
    assert ss.feature_names[:6] == ["0=0", "0=1", "0=2", "0=3", "0=4", "1 (numeric)"]


def test_many_distinct_positive_values_spanning_orders_of_magnitude_use_log(tmp_path: Path) -> None:
    ss = make([(2**k,) for k in range(3, 14)], tmp_path)
    assert ss.feature_spec[0]["kind"] == "log"
    x = ss.features[:, 0]
    np.testing.assert_allclose(np.diff(x), np.full(10, np.diff(x)[0]), rtol=1e-5)  # equally spaced in log


def test_feature_spec_overrides_per_position(tmp_path: Path) -> None:
    encodings = [(k, d) for k in range(4) for d in (1, 2, 5)]
    ss = make(encodings, tmp_path, feature_spec={0: "numeric", 1: "onehot"})
    assert [s["kind"] for s in ss.feature_spec] == ["numeric", "onehot"]
    assert ss.features.shape == (12, 1 + 3)
    ss = make(encodings, tmp_path, feature_spec=[None, {"kind": "numeric", "center": 0.0, "scale": 2.0}])
    # column 4 is position 1; position 0 (inferred one-hot) also gets an ordinal column at the end
    np.testing.assert_allclose(ss.features[:, 4], np.array([d / 2 for _ in range(4) for d in (1, 2, 5)]))
    assert ss.feature_names[4:] == ["1 (numeric)", "0 (ordinal)"]
    with pytest.raises(EncodingError, match="unknown"):
        make(encodings, tmp_path, feature_spec=["cubic", None])
    with pytest.raises(EncodingError, match=r"has 1 entries, expected 2 \(one per position"):
        make(encodings, tmp_path, feature_spec=[None])
    with pytest.raises(EncodingError, match="cannot be used as numbers"):
        make([("a",), ("b",)], tmp_path, feature_spec=["numeric"])


def test_whole_feature_matrix_can_be_given_as_array_or_callable(tmp_path: Path) -> None:
    encodings = [(a, b) for a in range(3) for b in range(3)]
    given = np.arange(18, dtype=np.float64).reshape(9, 2)
    ss = make(encodings, tmp_path, features=given)
    np.testing.assert_array_equal(ss.features, given.astype(np.float32))
    assert ss.feature_spec is None

    def sum_and_product(matrix: np.ndarray) -> np.ndarray:
        assert matrix.shape == (9, 2) and matrix.dtype == np.int64
        return np.stack([matrix.sum(axis=1), matrix.prod(axis=1)], axis=1)

    ss = make(encodings, tmp_path, features=sum_and_product)
    assert ss.features[8].tolist() == [4.0, 4.0]
    with pytest.raises(EncodingError, match=r"shape \(8, 2\)"):
        make(encodings, tmp_path, features=given[:8])
    with pytest.raises(EncodingError, match="finite"):
        make(encodings, tmp_path, features=np.full((9, 1), np.nan))


# -- filter --------------------------------------------------------------------------------------------


def profiled_space(tmp_path: Path):
    encodings = [(depth, width) for depth in range(1, 11) for width in (0.5, 1.0, 1.5, 2.0)]
    ss = make(encodings, tmp_path)
    ss.profile["params"] = np.array([d * w * 1e5 for d, w in encodings])
    ss.profile["params"][3] = np.nan  # not profiled
    ss.failures = {7: "boom", 30: "bang"}
    return ss, encodings


def test_filter_by_bounds_reports_the_kept_size(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ss, encodings = profiled_space(tmp_path)
    with caplog.at_level(logging.INFO, logger="nastune"):
        small = ss.filter(params=(2e5, 6e5))
    expected = [i for i, (d, w) in enumerate(encodings) if 2e5 <= d * w * 1e5 <= 6e5 and i != 3]
    assert small.parent_indices is not None and small.parent_indices.tolist() == expected
    assert len(small) == small.filter_report["kept"] == len(expected)
    assert small.filter_report["total"] == 40
    assert small.encodings.tolist() == [encodings[i] for i in expected]
    np.testing.assert_array_equal(small.profile["params"], ss.profile["params"][expected])
    np.testing.assert_array_equal(small.features, ss.features[expected])
    assert f"kept {len(expected)} of 40" in caplog.text
    assert small.failures == {expected.index(7): "boom"}
    kept_unknown = ss.filter(params=(2e5, 6e5), keep_unknown=True)
    assert 3 in kept_unknown.parent_indices.tolist()


def test_filter_by_predicate_and_vectorized_predicate_agree(tmp_path: Path) -> None:
    ss, _ = profiled_space(tmp_path)

    def depth_19_to_22ish(enc: tuple, metrics: dict) -> bool:
        return 3 <= enc[0] <= 6 and not (metrics["params"] > 5e5)

    a = ss.filter(depth_19_to_22ish)
    b = ss.filter(lambda m, p: (m[:, 0] >= 3) & (m[:, 0] <= 6) & ~(p["params"] > 5e5), vectorized=True)
    assert a.parent_indices.tolist() == b.parent_indices.tolist()
    assert a.filter_report["predicate"] == "depth_19_to_22ish"
    chained = a.filter(params=(None, 3e5))
    assert all(ss.profile["params"][i] <= 3e5 for i in chained.parent_indices)


def test_filter_rejects_unknown_metric_bad_bounds_and_empty_results(tmp_path: Path) -> None:
    ss, _ = profiled_space(tmp_path)
    with pytest.raises(ProfilingError, match="flops"):
        ss.filter(flops=(0, 1))
    with pytest.raises(ProfilingError, match=r"\(lo, hi\)"):
        ss.filter(params=5)  # type: ignore[arg-type]
    with pytest.raises(EncodingError, match="keeps none"):
        ss.filter(params=(1e12, None))


def test_predict_without_a_surrogate_says_how_to_get_one(tmp_path: Path) -> None:
    ss = make([(1,), (2,)], tmp_path)
    with pytest.raises(NastuneError, match="preprocess"):
        ss.predict([0, 1])


def test_preprocess_without_a_builder_or_data_says_what_to_pass(tmp_path: Path) -> None:
    ss = make([(1,), (2,)], tmp_path)
    with pytest.raises(ProfilingError, match="pretraining_data"):
        ss.preprocess(progress=False)


# -- scale ---------------------------------------------------------------------------------------------


def test_a_million_encodings_are_created_fast_with_memory_proportional_to_the_matrix(tmp_path: Path) -> None:
    n, length = 1_000_000, 8
    encodings = list(itertools.islice(itertools.product(range(6), repeat=length), n))
    matrix_bytes = n * length * 8
    tracemalloc.start()
    try:
        start = time.perf_counter()
        ss = make(encodings, tmp_path)
        seconds = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(ss) == n
    assert seconds < 30, f"creating 1M x 8 took {seconds:.1f} s"
    # columns (1x) + hashes/order (2 x n x 8) + one transient column list (n pointers) + slack
    assert peak < 4 * matrix_bytes, f"peak traced memory {peak / 1e6:.0f} MB for a {matrix_bytes / 1e6:.0f} MB matrix"
    assert ss.index_of(encodings[654_321]) == 654_321
    encodings[-1] = encodings[12]
    with pytest.raises(EncodingError, match=f"encoding {n - 1} .* duplicate of encoding 12"):
        validate_encodings(encodings)


def test_encodings_table_round_trips_through_json() -> None:
    table = validate_encodings([(1, 0.5, "a", True), (2, -0.0, "b", False)])
    again = Encodings.from_json_obj(table.to_json_obj())
    assert again == table and again.kinds == table.kinds
