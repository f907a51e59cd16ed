"""The MobileOne-SwiftFormer hybrid search space of the paper (section 4.2, Table 3).

An encoding is an 8-tuple of strings, two per stage::

    (conv1, attn1, conv2, attn2, conv3, attn3, conv4, attn4)

* ``conv<i>`` in {"conv-enc", "mo", "mo-se"}: SwiftFormer's conv encoder, a MobileOne block pair,
  or a MobileOne block pair with squeeze-and-excitation;
* ``attn<i>`` in {"none", "last-1", "last-2", "all"}: how many of the stage's last blocks are
  attention blocks (mini conv block of the stage's type + efficient additive attention + MLP).

12 choices per stage, 12**4 = 20,736 encodings. The macro layout (stem, depths, widths) is a
:class:`~examples.mobileone_swiftformer.net.Skeleton`; the default is SwiftFormer-XS's, in which
:data:`SWIFTFORMER_XS_ENCODING` is SwiftFormer-XS. With ``skeleton="mobileone-s0"``,
:data:`MOBILEONE_S0_ENCODING` is exactly MobileOne-s0.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any, cast

from .net import SKELETONS, SWIFTFORMER_XS_SKELETON, ConvType, HybridNet, Skeleton, StageSpec

__all__ = [
    "ATTENTION_CHOICES",
    "CONV_CHOICES",
    "ENCODING_FIELDS",
    "MOBILEONE_S0_ENCODING",
    "SWIFTFORMER_XS_ENCODING",
    "build_encodings",
    "encoding_to_net",
]

ENCODING_FIELDS: tuple[str, ...] = ("conv1", "attn1", "conv2", "attn2", "conv3", "attn3", "conv4", "attn4")
CONV_CHOICES: tuple[str, ...] = ("conv-enc", "mo", "mo-se")
ATTENTION_CHOICES: tuple[str, ...] = ("none", "last-1", "last-2", "all")

SWIFTFORMER_XS_ENCODING: tuple[str, ...] = ("conv-enc", "last-1") * 4
MOBILEONE_S0_ENCODING: tuple[str, ...] = ("mo", "none") * 4

# "all" is resolved against each stage's depth when the network is built.
_ATTENTION_BLOCKS = {"none": 0, "last-1": 1, "last-2": 2, "all": 1 << 30}


def build_encodings() -> list[tuple[str, ...]]:
    """All 20,736 encodings of Table 3, in lexicographic order of the choice lists."""
    per_stage = list(itertools.product(CONV_CHOICES, ATTENTION_CHOICES))
    return [tuple(itertools.chain.from_iterable(combo)) for combo in itertools.product(per_stage, repeat=4)]


def decode(encoding: Sequence[Any]) -> list[StageSpec]:
    """Validate an encoding -> one :class:`StageSpec` per stage."""
    if len(encoding) != len(ENCODING_FIELDS):
        raise ValueError(
            f"hybrid encoding has length {len(encoding)}, expected {len(ENCODING_FIELDS)}: "
            + ", ".join(ENCODING_FIELDS)
        )
    specs = []
    for stage in range(4):
        conv, attention = encoding[2 * stage], encoding[2 * stage + 1]
        if conv not in CONV_CHOICES:
            raise ValueError(f"conv{stage + 1} is {conv!r}; choose one of {', '.join(CONV_CHOICES)}")
        if attention not in ATTENTION_CHOICES:
            raise ValueError(f"attn{stage + 1} is {attention!r}; choose one of {', '.join(ATTENTION_CHOICES)}")
        specs.append(StageSpec(cast(ConvType, conv), _ATTENTION_BLOCKS[attention]))
    return specs


def encoding_to_net(
    encoding: Sequence[Any],
    n_classes: int = 10,
    *,
    skeleton: str | Skeleton = SWIFTFORMER_XS_SKELETON,
    n_branches: int = 4,
) -> HybridNet:
    """Build the train-time hybrid network of an encoding (``.reparameterize()`` fuses its MobileOne blocks).

    ``skeleton``: "swiftformer-xs" (default), "mobileone-s0" or a :class:`Skeleton`.
    ``n_branches``: conv branches of every MobileOne block (the paper runs 4 and 1).

    Input (batch, 3, H, W) -> logits (batch, n_classes).
    """
    if isinstance(skeleton, str):
        if skeleton not in SKELETONS:
            raise ValueError(f"unknown skeleton {skeleton!r}; choose one of {', '.join(SKELETONS)}")
        skeleton = SKELETONS[skeleton]
    return HybridNet(decode(encoding), skeleton=skeleton, n_classes=n_classes, n_branches=n_branches)
