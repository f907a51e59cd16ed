"""The MobileOne-based search space of the paper (section 4.1, Table 1): encodings, filters, networks.

An encoding is a 10-tuple of JSON scalars::

    (depth1, width1, depth2, width2, depth3, width3, depth4, width4, use_se, n_branches)

* ``depth<i>``: nominal depth of stage ``i`` in {0, 1, 2, 5, 8, 10} (block pairs; 0 builds one pair,
  as the reference code does, see :func:`examples.mobileone.net.reference_stage_plan`);
* ``width<i>``: width multiplier of stage ``i`` (base widths 64/128/256/512), 0.25 to 4.0 in steps of
  0.25, non-decreasing from stage to stage;
* ``use_se``: 0 or 1, squeeze-and-excitation in the last half of stage 3 and all of stage 4;
* ``n_branches``: 1 or 4 parallel conv branches per MobileOne block.

The paper keeps the encodings with ``19 <= depth1 + depth2 + depth3 + depth4 <= 22`` and
``0.86M <= test-time params <= 1.26M`` at 10 classes. Parameter counts are computed in closed form
(:func:`count_params`), so :func:`build_encodings` takes about a second.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

import numpy as np

from .net import SE_REDUCTION, MobileOne, reference_stage_plan, se_hidden_channels

__all__ = [
    "BASE_WIDTHS",
    "BRANCH_CHOICES",
    "DEPTH_CHOICES",
    "ENCODING_FIELDS",
    "S0_ENCODING",
    "SE_CHOICES",
    "STEM_CAP",
    "WIDTH_CHOICES",
    "apply_filters",
    "build_encodings",
    "closed_form_profile",
    "count_flops",
    "count_params",
    "encoding_to_net",
]

ENCODING_FIELDS: tuple[str, ...] = (
    "depth1",
    "width1",
    "depth2",
    "width2",
    "depth3",
    "width3",
    "depth4",
    "width4",
    "use_se",
    "n_branches",
)
DEPTH_CHOICES: tuple[int, ...] = (0, 1, 2, 5, 8, 10)
WIDTH_CHOICES: tuple[float, ...] = tuple(0.25 * step for step in range(1, 17))
SE_CHOICES: tuple[int, ...] = (0, 1)
BRANCH_CHOICES: tuple[int, ...] = (1, 4)
BASE_WIDTHS: tuple[int, ...] = (64, 128, 256, 512)
STEM_CAP = 64
DEPTH_RANGE: tuple[int, int] = (19, 22)
PARAMS_RANGE: tuple[float, float] = (0.86e6, 1.26e6)

# MobileOne-s0: 4.28M train-time / 1.06M test-time parameters at 10 classes (paper, Table 2).
S0_ENCODING: tuple[int | float, ...] = (2, 0.75, 8, 1.0, 10, 1.0, 1, 2.0, 0, 4)

Count = TypeVar("Count", int, np.ndarray)


def _decode(encoding: Sequence[Any]) -> tuple[list[int], list[float], bool, int]:
    """Validate an encoding -> (depths, width multipliers, use_se, n_branches)."""
    if len(encoding) != len(ENCODING_FIELDS):
        raise ValueError(
            f"MobileOne encoding has length {len(encoding)}, expected {len(ENCODING_FIELDS)}: "
            + ", ".join(ENCODING_FIELDS)
        )
    depths = [encoding[0], encoding[2], encoding[4], encoding[6]]
    widths = [encoding[1], encoding[3], encoding[5], encoding[7]]
    use_se, n_branches = encoding[8], encoding[9]
    for stage, depth in enumerate(depths, start=1):
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
            raise ValueError(f"depth{stage} is {depth!r}; stage depths are non-negative integers")
    for stage, (width, base) in enumerate(zip(widths, BASE_WIDTHS, strict=True), start=1):
        if isinstance(width, bool) or not isinstance(width, (int, float)) or int(base * width) < 1:
            raise ValueError(f"width{stage} is {width!r}; a width multiplier must give at least 1 channel")
    if use_se not in (0, 1):
        raise ValueError(f"use_se is {use_se!r}; use 0 (no SE) or 1 (SE)")
    if isinstance(n_branches, bool) or not isinstance(n_branches, int) or n_branches < 1:
        raise ValueError(f"n_branches is {n_branches!r}; use a positive integer (the paper uses 1 or 4)")
    return [int(d) for d in depths], [float(w) for w in widths], bool(use_se), int(n_branches)


def encoding_to_net(encoding: Sequence[Any], n_classes: int = 10) -> MobileOne:
    """Build the train-time MobileOne network of an encoding (call ``.reparameterize()`` for inference).

    Input (batch, 3, H, W) -> logits (batch, n_classes).
    """
    depths, widths, use_se, n_branches = _decode(encoding)
    pairs, se_pairs = reference_stage_plan(depths, use_se)
    return MobileOne(
        pairs,
        widths,
        se_pairs=se_pairs,
        n_branches=n_branches,
        n_classes=n_classes,
        base_widths=BASE_WIDTHS,
        stem_cap=STEM_CAP,
    )


def _se_params(channels: Count) -> Count:
    """Parameters of one SE gate on ``channels`` channels (reduce + expand convs with biases)."""
    if isinstance(channels, np.ndarray):
        hidden = np.maximum(1, channels // SE_REDUCTION)
    else:
        hidden = se_hidden_channels(channels)
    return 2 * channels * hidden + hidden + channels


def _network_params(
    depths: Sequence[int],
    widths: Sequence[Count],
    use_se: bool,
    n_branches: int,
    n_classes: int,
    test_time: bool,
) -> Count:
    """Closed-form parameter count; ``widths`` are channel counts (ints or equal-shape int arrays)."""
    pairs, se_pairs = reference_stage_plan(depths, use_se)
    stem_width = widths[0]
    channels = np.minimum(STEM_CAP, stem_width) if isinstance(stem_width, np.ndarray) else min(STEM_CAP, stem_width)
    # Stem: 3x3 conv 3 -> c. Test time: weights + bias. Train time: 1 branch + 1x1 scale, each conv + BN.
    total = 28 * channels if test_time else 34 * channels
    for n_pairs, n_se, width in zip(pairs, se_pairs, widths, strict=True):
        for pair in range(n_pairs):
            if test_time:
                total = total + 10 * channels + channels * width + width
            else:
                depthwise = n_branches * 11 * channels + 3 * channels + (2 * channels if pair > 0 else 0)
                pointwise = n_branches * (channels * width + 2 * width)
                if isinstance(width, np.ndarray):
                    pointwise = pointwise + np.where(channels == width, 2 * width, 0)
                elif channels == width:
                    pointwise = pointwise + 2 * width
                total = total + depthwise + pointwise
            if pair >= n_pairs - n_se:
                total = total + _se_params(channels) + _se_params(width)
            channels = width
    return total + channels * n_classes + n_classes


def count_params(encoding: Sequence[Any], n_classes: int = 10, *, test_time: bool = True) -> int:
    """Exact parameter count of ``encoding_to_net(encoding, n_classes)`` without building it.

    ``test_time=True`` counts the reparameterised network (one conv with bias per block),
    ``False`` the train-time one (all branches; BN weight and bias, not running statistics).
    """
    depths, mults, use_se, n_branches = _decode(encoding)
    widths = [int(base * mult) for base, mult in zip(BASE_WIDTHS, mults, strict=True)]
    return int(_network_params(depths, widths, use_se, n_branches, n_classes, test_time))


def count_flops(encoding: Sequence[Any], n_classes: int = 10, *, input_shape: Sequence[int] = (1, 3, 224, 224)) -> int:
    """FLOPs of one forward pass of the reparameterised network on a batch of ``input_shape`` (B, 3, H, W).

    Counted as :class:`torch.utils.flop_counter.FlopCounterMode` does (and so as ``nastune.profiling``
    does): 2 x multiply-accumulates of every convolution and of the linear head; biases, activations,
    pooling and the SE gating product count 0.
    """
    depths, mults, use_se, _ = _decode(encoding)
    batch, _, height, width = (int(v) for v in input_shape)
    widths = [int(base * mult) for base, mult in zip(BASE_WIDTHS, mults, strict=True)]
    pairs, se_pairs = reference_stage_plan(depths, use_se)

    def halve(size: int) -> int:  # 3x3 conv, stride 2, padding 1
        return (size - 1) // 2 + 1

    height, width = halve(height), halve(width)
    channels = min(STEM_CAP, widths[0])
    flops = 2 * batch * channels * 3 * 9 * height * width
    for n_pairs, n_se, out in zip(pairs, se_pairs, widths, strict=True):
        for pair in range(n_pairs):
            if pair == 0:
                height, width = halve(height), halve(width)
            pixels = batch * height * width
            flops += 2 * pixels * channels * 9 + 2 * pixels * channels * out
            if pair >= n_pairs - n_se:
                flops += 4 * batch * (channels * se_hidden_channels(channels) + out * se_hidden_channels(out))
            channels = out
    return flops + 2 * batch * channels * n_classes


def closed_form_profile(
    encodings: Iterable[Sequence[Any]], n_classes: int = 10, *, input_shape: Sequence[int] = (16, 3, 224, 224)
) -> dict[str, list[float]]:
    """``params``, ``params_test`` and ``flops`` of every encoding, equal to what ``nastune.profiling`` measures.

    Usable as ``SearchSpace.preprocess(pretraining_data=...)`` (with measured latency, if wanted) to skip
    building 55,846 networks: the whole space takes a few seconds.
    -> metric -> one value per encoding
    """
    profile: dict[str, list[float]] = {"params": [], "params_test": [], "flops": []}
    for encoding in encodings:
        profile["params"].append(float(count_params(encoding, n_classes, test_time=False)))
        profile["params_test"].append(float(count_params(encoding, n_classes)))
        profile["flops"].append(float(count_flops(encoding, n_classes, input_shape=input_shape)))
    return profile


def apply_filters(
    encodings: Iterable[Sequence[Any]],
    *,
    depth_range: tuple[int, int] | None = DEPTH_RANGE,
    params_range: tuple[float, float] | None = PARAMS_RANGE,
    n_classes: int = 10,
) -> list[tuple[Any, ...]]:
    """Keep the encodings whose nominal total depth and test-time parameter count are in range (inclusive).

    ``None`` switches a filter off. The paper's filters are the defaults.
    """
    kept: list[tuple[Any, ...]] = []
    for encoding in encodings:
        depths, _, _, _ = _decode(encoding)
        if depth_range is not None and not depth_range[0] <= sum(depths) <= depth_range[1]:
            continue
        if params_range is not None and not (params_range[0] <= count_params(encoding, n_classes) <= params_range[1]):
            continue
        kept.append(tuple(encoding))
    return kept


def build_encodings(
    *,
    depth_range: tuple[int, int] | None = DEPTH_RANGE,
    params_range: tuple[float, float] | None = PARAMS_RANGE,
    n_classes: int = 10,
) -> list[tuple[Any, ...]]:
    """All encodings of Table 1 that pass the filters, in lexicographic order.

    With the defaults (the paper's filters at 10 classes) this is 55,846 encodings; see README.md.
    The width multipliers of all non-decreasing 4-tuples are handled as numpy arrays per
    (depths, use_se) combination, so the count is computed in closed form in about a second.
    Switching ``depth_range`` off enumerates 1,296 depth combinations instead of 247.
    """
    steps = range(len(WIDTH_CHOICES))
    width_steps = np.array(
        [combo for combo in itertools.product(steps, repeat=4) if list(combo) == sorted(combo)],
        dtype=np.int64,
    )  # (n_width_combos, 4) indices into WIDTH_CHOICES
    multipliers = np.asarray(WIDTH_CHOICES)[width_steps]  # (n_width_combos, 4)
    channels = [(base * multipliers[:, stage]).astype(np.int64) for stage, base in enumerate(BASE_WIDTHS)]
    # Test-time params do not depend on n_branches, so count once per (depths, use_se).
    encodings: list[tuple[Any, ...]] = []
    for depths in itertools.product(DEPTH_CHOICES, repeat=4):
        if depth_range is not None and not depth_range[0] <= sum(depths) <= depth_range[1]:
            continue
        for use_se in SE_CHOICES:
            if params_range is None:
                rows = np.arange(len(width_steps))
            else:
                params = _network_params(depths, channels, bool(use_se), 1, n_classes, test_time=True)
                rows = np.flatnonzero((params >= params_range[0]) & (params <= params_range[1]))
            for row in rows:
                mults = [WIDTH_CHOICES[i] for i in width_steps[row]]
                for n_branches in BRANCH_CHOICES:
                    encodings.append(
                        (
                            depths[0],
                            mults[0],
                            depths[1],
                            mults[1],
                            depths[2],
                            mults[2],
                            depths[3],
                            mults[3],
                            use_se,
                            n_branches,
                        )
                    )
    encodings.sort()
    return encodings
