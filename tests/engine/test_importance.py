"""Position importance as a first-order variance decomposition over evaluated points."""

from __future__ import annotations

import numpy as np
import pytest

from nastune.errors import NastuneError
from nastune.importance import position_importance


def test_a_position_that_decides_the_value_explains_all_of_it() -> None:
    encodings = [[width, act] for width in (8, 16, 32) for act in ("relu", "tanh")]
    values = [1.0 if act == "relu" else 0.0 for _, act in encodings]
    result = position_importance(encodings, values)
    assert [r["position"] for r in result] == [0, 1]
    assert result[1]["importance"] == pytest.approx(1.0, abs=1e-12)
    assert result[0]["importance"] == pytest.approx(0.0, abs=1e-12)
    assert [r["levels"] for r in result] == [3, 2]


def test_additive_effects_split_the_variance_by_their_size() -> None:
    rng = np.random.default_rng(0)
    encodings = [[int(a), int(b)] for a, b in rng.integers(0, 4, size=(4000, 2))]
    values = [3.0 * a + 1.0 * b for a, b in encodings]
    result = position_importance(encodings, values)
    # independent uniform positions: shares are 9/10 and 1/10 of the variance
    np.testing.assert_allclose([r["importance"] for r in result], [0.9, 0.1], atol=0.02)


def test_a_numeric_position_with_many_levels_is_binned() -> None:
    encodings = [[x / 10] for x in range(100)]
    result = position_importance(encodings, [x / 10 for x in range(100)], max_levels=5)
    assert result[0]["levels"] == 5 and result[0]["importance"] > 0.9


def test_constant_values_explain_nothing() -> None:
    assert position_importance([[1], [2]], [0.5, 0.5])[0]["importance"] == 0.0
    assert position_importance([], []) == []


def test_bad_input_says_what_to_fix() -> None:
    with pytest.raises(NastuneError, match="one value per encoding"):
        position_importance([[1], [2]], [1.0])
    with pytest.raises(NastuneError, match="finite"):
        position_importance([[1], [2]], [1.0, float("nan")])
    with pytest.raises(NastuneError, match="length 1, expected 2"):
        position_importance([[1, 2], [3]], [1.0, 2.0])
    with pytest.raises(NastuneError, match="at least 2"):
        position_importance([[1]], [1.0], max_levels=1)
