"""The NAS-Bench-201 cell space: its 15,625 encodings, a richer feature map, and analytic params / FLOPs.

Encodings are 6-tuples of operation codes in ``ops_code`` order (see :mod:`examples.nb201.net`); the
index of an encoding in :func:`build_encodings` is its ``ops_code`` read as a base-5 number.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from .net import EDGES, OPS

N_OPS = len(OPS)
N_EDGES = len(EDGES)
#: Input-to-output paths of the cell as encoding positions: 0->3, 0->1->3, 0->2->3, 0->1->2->3.
PATHS: tuple[tuple[int, ...], ...] = ((3,), (0, 4), (1, 5), (0, 2, 5))
_PATH_OFFSETS = {1: 0, 2: 4, 3: 4 + 16}
N_PATH_FEATURES = 4 + 16 + 64


def build_encodings() -> list[tuple[int, ...]]:
    """All ``5**6 = 15,625`` cell encodings, in ``ops_code`` base-5 order (``(0,0,0,0,0,0)`` first)."""
    return list(itertools.product(range(N_OPS), repeat=N_EDGES))


def ops_code(encoding: Sequence[int]) -> str:
    """The benchmark's ``ops_code`` string of an encoding, e.g. ``(4, 2, 1, 2, 1, 1) -> "421211"``."""
    return "".join(str(int(v)) for v in encoding)


def encoding_index(encoding: Sequence[int]) -> int:
    """Position of ``encoding`` in :func:`build_encodings`."""
    index = 0
    for v in encoding:
        index = index * N_OPS + int(v)
    return index


def arch_str(encoding: Sequence[int]) -> str:
    """The standard NAS-Bench-201 string, e.g. ``|nor_conv_3x3~0|+|...~0|...~1|+|...|``."""
    ops = [OPS[int(v)] for v in encoding]
    nodes = [[f"{ops[k]}~{source}" for k, (target, source) in enumerate(EDGES) if target == t] for t in (1, 2, 3)]
    return "+".join("|" + "|".join(node) + "|" for node in nodes)


def _as_matrix(encodings: Sequence[Sequence[int]] | np.ndarray) -> np.ndarray:
    codes = np.asarray(encodings, dtype=np.int64)
    if codes.ndim != 2 or codes.shape[1] != N_EDGES or codes.min(initial=0) < 0 or codes.max(initial=0) >= N_OPS:
        raise ValueError(f"NB201 encodings must be an (n, {N_EDGES}) array of operation codes 0..{N_OPS - 1}")
    return codes


def features(encodings: Sequence[Sequence[int]] | np.ndarray) -> np.ndarray:
    """A feature map for the surrogate: one-hot ops, path encoding and op counts.

    Args:
        encodings: ``(n, 6)`` operation codes.

    Returns:
        ``(n, 121)`` float32: 30 one-hot columns (edge x op); 84 path-encoding counts (how many live
        input-to-output paths carry each sequence of non-``none`` ops, lengths 1-3, as in BANANAS; ops on dead
        edges do not appear, so isomorphic cells mostly share these columns); the count of each op over the 6
        edges divided by 6 (5 columns); the number of live paths / 4; the number of convolutions on the
        longest live path / 3.
    """
    codes = _as_matrix(encodings)
    n = len(codes)
    onehot = np.zeros((n, N_EDGES * N_OPS), dtype=np.float32)
    onehot[np.repeat(np.arange(n), N_EDGES), (np.arange(N_EDGES) * N_OPS + codes).ravel()] = 1.0
    paths = np.zeros((n, N_PATH_FEATURES), dtype=np.float32)
    live_paths = np.zeros(n, dtype=np.float32)
    deepest = np.zeros(n, dtype=np.float32)
    for path in PATHS:
        ops = codes[:, path]
        live = (ops != 0).all(axis=1)
        index = np.zeros(n, dtype=np.int64)
        for k in range(len(path)):
            index = index * 4 + np.maximum(ops[:, k] - 1, 0)
        rows = np.flatnonzero(live)
        np.add.at(paths, (rows, _PATH_OFFSETS[len(path)] + index[rows]), 1.0)
        live_paths += live
        convs = ((ops == 2) | (ops == 3)).sum(axis=1).astype(np.float32)
        deepest = np.maximum(deepest, np.where(live, convs, 0.0))
    counts = np.stack([(codes == op).sum(axis=1) for op in range(N_OPS)], axis=1).astype(np.float32) / N_EDGES
    return np.concatenate([onehot, paths, counts, (live_paths / 4)[:, None], (deepest / 3)[:, None]], axis=1)


def count_params(encoding: Sequence[int], n_classes: int = 10, channels: int = 16, cells_per_stage: int = 5) -> int:
    """Parameters of :func:`examples.nb201.net.encoding_to_net` (all trainable), computed without torch.

    Counts conv weights (no bias), BN affine weight + bias, and the classifier's weight + bias, like the
    benchmark's ``count_parameters_in_MB``.
    """
    c = channels
    total = 3 * c * 9 + 2 * c  # stem conv + BN
    n_1x1 = sum(1 for v in encoding if int(v) == 2)
    n_3x3 = sum(1 for v in encoding if int(v) == 3)
    for stage in range(3):
        w = c * 2**stage
        total += cells_per_stage * (n_1x1 * (w * w + 2 * w) + n_3x3 * (9 * w * w + 2 * w))
        if stage < 2:
            total += 9 * w * 2 * w + 2 * (2 * w) + 9 * (2 * w) ** 2 + 2 * (2 * w) + w * 2 * w
    total += 2 * 4 * c + 4 * c * n_classes + n_classes  # last BN + classifier
    return total


def count_flops(
    encoding: Sequence[int],
    input_size: int = 32,
    n_classes: int = 10,
    batch: int = 1,
    channels: int = 16,
    cells_per_stage: int = 5,
) -> int:
    """FLOPs of one forward pass, computed analytically with the conventions of ``FlopCounterMode``.

    ``2 * multiply-adds`` of every convolution and of the classifier's matrix product; pooling, BN, ReLU,
    sums and the ``none`` op count 0. ``input_size`` is the side of the square input (32 for CIFAR,
    16 for ImageNet16-120).
    """
    if input_size % 4:
        raise ValueError(f"input_size must be a multiple of 4 (two stride-2 reductions), got {input_size}")
    c = channels
    side = input_size
    total = 2 * c * side * side * 3 * 9  # stem
    n_1x1 = sum(1 for v in encoding if int(v) == 2)
    n_3x3 = sum(1 for v in encoding if int(v) == 3)
    for stage in range(3):
        w = c * 2**stage
        if stage > 0:
            side //= 2
            w_in = w // 2
            total += 2 * w * side * side * w_in * 9  # conv_a (3x3, stride 2)
            total += 2 * w * side * side * w * 9  # conv_b
            total += 2 * w * side * side * w_in  # downsample: 1x1 conv after 2x2 average pooling
        total += cells_per_stage * 2 * side * side * (n_1x1 * w * w + n_3x3 * 9 * w * w)
    total += 2 * 4 * c * n_classes
    return batch * total


def count_params_matrix(encodings: Sequence[Sequence[int]] | np.ndarray, n_classes: int = 10) -> np.ndarray:
    """``(n,)`` int64 :func:`count_params` of every encoding (vectorised; C=16, N=5)."""
    codes = _as_matrix(encodings)
    base = count_params((0,) * N_EDGES, n_classes)
    per_1x1 = count_params((2,) + (0,) * (N_EDGES - 1), n_classes) - base
    per_3x3 = count_params((3,) + (0,) * (N_EDGES - 1), n_classes) - base
    return base + per_1x1 * (codes == 2).sum(axis=1) + per_3x3 * (codes == 3).sum(axis=1)


def count_flops_matrix(
    encodings: Sequence[Sequence[int]] | np.ndarray, input_size: int = 32, n_classes: int = 10
) -> np.ndarray:
    """``(n,)`` int64 :func:`count_flops` (batch 1) of every encoding (vectorised; C=16, N=5)."""
    codes = _as_matrix(encodings)
    base = count_flops((0,) * N_EDGES, input_size, n_classes)
    per_1x1 = count_flops((2,) + (0,) * (N_EDGES - 1), input_size, n_classes) - base
    per_3x3 = count_flops((3,) + (0,) * (N_EDGES - 1), input_size, n_classes) - base
    return base + per_1x1 * (codes == 2).sum(axis=1) + per_3x3 * (codes == 3).sum(axis=1)
