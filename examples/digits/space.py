"""The digits CNN search space: the 1,152 encodings in a fixed order and their index."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from .net import CHOICES, decode

Encoding = tuple[int, int, int, str, int, str, str]
N_ENCODINGS = 1
for _choices in CHOICES:
    N_ENCODINGS *= len(_choices)


def build_encodings() -> list[Encoding]:
    """Every digits encoding ``(n_blocks, width, kernel, activation, skip, pooling, norm)``, 1,152 of them.

    The order is the product of the choices of :data:`examples.digits.net.CHOICES` in field order (the last
    field varies fastest), the same on every call and machine; row ``i`` of the benchmark table is
    ``build_encodings()[i]``.
    """
    return [tuple(combo) for combo in itertools.product(*CHOICES)]


def encoding_index(encoding: Sequence[Any]) -> int:
    """Position of ``encoding`` in :func:`build_encodings` (validated; a bad encoding raises ``ValueError``)."""
    index = 0
    for value, choices in zip(decode(encoding), CHOICES, strict=True):
        index = index * len(choices) + choices.index(value)
    return index
