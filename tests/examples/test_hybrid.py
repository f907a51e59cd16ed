"""MobileOne-SwiftFormer hybrid space: Table 3 size, named encodings, blocks, reparameterisation."""

from __future__ import annotations

from typing import TypeVar

import pytest
import torch
from torch import nn

from examples.mobileone import S0_ENCODING
from examples.mobileone import encoding_to_net as mobileone_net
from examples.mobileone.net import MobileOneBlock
from examples.mobileone_swiftformer import (
    MOBILEONE_S0_ENCODING,
    SWIFTFORMER_XS_ENCODING,
    build_encodings,
    encoding_to_net,
)
from examples.mobileone_swiftformer.net import (
    ConvEncoder,
    EfficientAdditiveAttention,
    SwiftFormerEncoder,
)

ModuleT = TypeVar("ModuleT", bound=nn.Module)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def randomise_batch_norm(model: ModuleT) -> ModuleT:
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                assert module.running_mean is not None and module.running_var is not None
                module.running_mean.uniform_(-0.1, 0.1, generator=generator)
                module.running_var.uniform_(0.5, 2.0, generator=generator)
                module.weight.uniform_(0.5, 1.0, generator=generator)
                module.bias.uniform_(-0.1, 0.1, generator=generator)
    return model.eval()


def test_space_has_12_choices_per_stage_and_both_reference_networks() -> None:
    encodings = build_encodings()

    assert len(encodings) == 12**4 == 20_736
    assert len(set(encodings)) == len(encodings)
    assert SWIFTFORMER_XS_ENCODING in encodings
    assert MOBILEONE_S0_ENCODING in encodings
    assert all(len(e) == 8 for e in encodings)


@pytest.mark.parametrize("encoding", [SWIFTFORMER_XS_ENCODING, MOBILEONE_S0_ENCODING])
@pytest.mark.parametrize("skeleton", ["swiftformer-xs", "mobileone-s0"])
def test_named_encodings_build_and_run_forward(encoding: tuple, skeleton: str) -> None:
    net = encoding_to_net(encoding, n_classes=10, skeleton=skeleton).eval()

    with torch.no_grad():
        logits = net(torch.rand(2, 3, 64, 64))

    assert logits.shape == (2, 10)
    assert torch.isfinite(logits).all()


def test_swiftformer_xs_encoding_is_swiftformer_xs() -> None:
    net = encoding_to_net(SWIFTFORMER_XS_ENCODING, n_classes=1000)

    # SwiftFormer-XS is published at 3.5M parameters with its distillation head (220 x 1000 + 1000),
    # which this single-head classifier leaves out.
    assert n_params(net) == 3_254_360
    assert (n_params(net) + 221_000) / 1e6 == pytest.approx(3.5, abs=0.05)
    attention = [m for m in net.modules() if isinstance(m, SwiftFormerEncoder)]
    conv = [
        m for m in net.modules() if isinstance(m, ConvEncoder) and m.expand.out_channels == 4 * m.expand.in_channels
    ]
    assert len(attention) == 4  # the last block of every stage
    assert len(conv) == 3 + 3 + 6 + 4 - 4


def test_mobileone_s0_encoding_in_the_s0_skeleton_is_mobileone_s0() -> None:
    hybrid = encoding_to_net(MOBILEONE_S0_ENCODING, n_classes=10, skeleton="mobileone-s0")
    reference = mobileone_net(S0_ENCODING, n_classes=10)

    assert n_params(hybrid) == n_params(reference) == 4_278_522
    assert n_params(hybrid.reparameterize()) == n_params(reference.reparameterize()) == 1_063_754


@pytest.mark.parametrize(
    ("attention", "expected"),
    [("none", 0), ("last-1", 1), ("last-2", 2), ("all", 6)],
)
def test_attention_choice_sets_how_many_trailing_blocks_attend(attention: str, expected: int) -> None:
    encoding = ("mo", "none", "mo", "none", "mo-se", attention, "conv-enc", "none")
    stage3 = encoding_to_net(encoding).stages[2]

    kinds = [isinstance(block, SwiftFormerEncoder) for block in stage3.children()]
    assert sum(kinds) == expected
    assert kinds == [False] * (6 - expected) + [True] * expected
    # mo-se: every MobileOne block of the stage has squeeze-and-excitation, mini conv blocks included.
    blocks = [m for m in stage3.modules() if isinstance(m, MobileOneBlock)]
    assert len(blocks) == 12 and all(b.se is not None for b in blocks)


def test_efficient_additive_attention_keeps_token_shape() -> None:
    attention = EfficientAdditiveAttention(16)
    tokens = torch.randn(2, 49, 16)

    assert attention(tokens).shape == (2, 49, 16)
    assert n_params(attention) == 4 * 16 * 16 + 5 * 16


@pytest.mark.parametrize(
    "encoding",
    [
        ("mo-se", "all", "mo", "last-2", "conv-enc", "last-1", "mo", "none"),
        ("conv-enc", "none", "mo-se", "last-1", "mo", "all", "mo-se", "last-2"),
    ],
)
def test_reparameterisation_keeps_eval_outputs(encoding: tuple) -> None:
    torch.manual_seed(0)
    net = randomise_batch_norm(encoding_to_net(encoding, n_classes=10))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        before = net(x)
        after = net.reparameterize()(x)

    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-4)
    assert all(b.is_fused for b in net.modules() if isinstance(b, MobileOneBlock))


def test_one_branch_variant_has_fewer_train_time_parameters() -> None:
    four = encoding_to_net(MOBILEONE_S0_ENCODING, n_branches=4)
    one = encoding_to_net(MOBILEONE_S0_ENCODING, n_branches=1)

    assert n_params(one) < n_params(four)
    assert n_params(one.reparameterize()) == n_params(four.reparameterize())


@pytest.mark.parametrize(
    ("encoding", "message"),
    [
        (("mo", "none") * 3, "length 6, expected 8"),
        (("mo", "none", "mo", "none", "attention", "none", "mo", "none"), "conv3 is 'attention'"),
        (("mo", "none", "mo", "last-3", "mo", "none", "mo", "none"), "attn2 is 'last-3'"),
    ],
)
def test_invalid_encodings_are_rejected_with_the_choices(encoding: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        encoding_to_net(encoding)


def test_unknown_skeleton_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown skeleton 'big'"):
        encoding_to_net(MOBILEONE_S0_ENCODING, skeleton="big")
