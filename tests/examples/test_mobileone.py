"""MobileOne example space: block reparameterisation, s0 parameter counts, Table 1 encodings and filters."""

from __future__ import annotations

import random
import time
from typing import TypeVar

import pytest
import torch
from torch import nn

from examples.mobileone import (
    S0_ENCODING,
    MobileOneBlock,
    apply_filters,
    build_encodings,
    closed_form_profile,
    count_params,
    encoding_to_net,
)
from examples.mobileone.space import DEPTH_CHOICES, WIDTH_CHOICES

ModuleT = TypeVar("ModuleT", bound=nn.Module)

PAPER_SPACE_SIZE = 55_870


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def randomise_batch_norm(model: ModuleT, seed: int = 0) -> ModuleT:
    """Give every BatchNorm random running statistics and affine weights, as after training; eval mode."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                assert module.running_mean is not None and module.running_var is not None
                module.running_mean.uniform_(-0.1, 0.1, generator=generator)
                module.running_var.uniform_(0.5, 2.0, generator=generator)
                module.weight.uniform_(0.5, 1.0, generator=generator)
                module.bias.uniform_(-0.1, 0.1, generator=generator)
    return model.eval()


@pytest.fixture(scope="module")
def encodings() -> list[tuple]:
    return build_encodings()


@pytest.mark.parametrize(
    ("in_channels", "out_channels", "kernel_size", "stride", "groups", "n_branches", "use_se"),
    [
        (8, 8, 3, 1, 8, 4, False),  # depthwise with identity and scale branches
        (8, 8, 3, 2, 8, 1, True),  # depthwise, stride 2: no identity branch
        (8, 16, 1, 1, 1, 4, False),  # pointwise, no identity
        (16, 16, 1, 1, 1, 2, True),  # pointwise with identity, SE
        (3, 12, 3, 2, 1, 1, False),  # stem
    ],
)
def test_block_reparameterisation_keeps_eval_outputs(
    in_channels: int, out_channels: int, kernel_size: int, stride: int, groups: int, n_branches: int, use_se: bool
) -> None:
    torch.manual_seed(0)
    block = MobileOneBlock(
        in_channels, out_channels, kernel_size, stride=stride, groups=groups, n_branches=n_branches, use_se=use_se
    )
    randomise_batch_norm(block)
    x = torch.randn(2, in_channels, 9, 9)
    before = block(x)

    block.reparameterize()

    assert block.is_fused
    assert len(block.branches) == 0 and block.scale is None and block.identity is None
    torch.testing.assert_close(block(x), before, rtol=1e-5, atol=1e-5)
    block.reparameterize()  # idempotent
    torch.testing.assert_close(block(x), before, rtol=1e-5, atol=1e-5)


def test_s0_has_the_papers_train_and_test_time_parameter_counts() -> None:
    net = encoding_to_net(S0_ENCODING, n_classes=10)
    train_time = n_params(net)
    test_time = n_params(net.reparameterize())

    assert train_time == pytest.approx(4.28e6, rel=0.005)
    assert test_time == pytest.approx(1.06e6, rel=0.005)
    assert (train_time, test_time) == (4_278_522, 1_063_754)
    assert count_params(S0_ENCODING, test_time=False) == train_time
    assert count_params(S0_ENCODING) == test_time


@pytest.mark.parametrize(
    "encoding",
    [
        S0_ENCODING,
        (1, 0.5, 5, 1.0, 8, 1.5, 5, 2.0, 1, 4),  # SE in stage 3's last half and all of stage 4
        (0, 0.25, 10, 0.5, 10, 0.75, 0, 1.0, 0, 1),  # depth-0 stages (one pair with SE, as the reference)
    ],
)
def test_network_reparameterisation_keeps_eval_outputs(encoding: tuple) -> None:
    torch.manual_seed(0)
    net = randomise_batch_norm(encoding_to_net(encoding, n_classes=10))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        before = net(x)
        after = net.reparameterize()(x)

    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-4)
    assert (after - before).abs().max() <= 1e-4 * before.abs().max()
    blocks = [m for m in net.modules() if isinstance(m, MobileOneBlock)]
    assert blocks and all(b.is_fused for b in blocks)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in net.modules())


def test_space_size_matches_the_paper_within_a_tenth_of_a_percent(encodings: list[tuple]) -> None:
    assert len(encodings) == 55_846
    assert abs(len(encodings) - PAPER_SPACE_SIZE) / PAPER_SPACE_SIZE < 0.001
    assert len(set(encodings)) == len(encodings)
    assert S0_ENCODING in encodings


def test_every_encoding_is_in_table_1_and_passes_the_filters(encodings: list[tuple]) -> None:
    for encoding in random.Random(0).sample(encodings, 2000):
        depths, widths = encoding[0:8:2], encoding[1:8:2]
        assert all(d in DEPTH_CHOICES for d in depths)
        assert all(w in WIDTH_CHOICES for w in widths)
        assert list(widths) == sorted(widths)
        assert 19 <= sum(depths) <= 22
        assert 0.86e6 <= count_params(encoding) <= 1.26e6
        assert encoding[8] in (0, 1) and encoding[9] in (1, 4)


def test_build_encodings_takes_seconds() -> None:
    started = time.perf_counter()
    build_encodings()
    assert time.perf_counter() - started < 10.0


def test_closed_form_counts_match_built_networks(encodings: list[tuple]) -> None:
    sample = [*random.Random(1).sample(encodings, 8), (10, 4.0, 0, 4.0, 0, 4.0, 10, 4.0, 1, 4)]
    for encoding in sample:
        with torch.device("meta"):
            net = encoding_to_net(encoding, n_classes=7)
        assert n_params(net) == count_params(encoding, n_classes=7, test_time=False), encoding
        assert n_params(net.reparameterize()) == count_params(encoding, n_classes=7), encoding


def test_apply_filters_agrees_with_build_encodings(encodings: list[tuple]) -> None:
    rng = random.Random(2)
    candidates = []
    for _ in range(3000):
        widths = sorted(rng.choices(WIDTH_CHOICES, k=4))
        depths = [rng.choice(DEPTH_CHOICES) for _ in range(4)]
        stages = [value for pair in zip(depths, widths, strict=True) for value in pair]
        candidates.append((*stages, rng.choice((0, 1)), rng.choice((1, 4))))
    kept = apply_filters(candidates)
    in_space = set(encodings)

    assert kept == [c for c in candidates if c in in_space]
    assert apply_filters(candidates, depth_range=None, params_range=None) == candidates


def test_build_encodings_without_filters_is_the_full_grid() -> None:
    unfiltered = build_encodings(params_range=None)
    # 247 depth combinations with total depth 19..22, 3,876 non-decreasing width 4-tuples, SE x branches.
    assert len(unfiltered) == 247 * 3876 * 2 * 2


@pytest.mark.parametrize(
    ("encoding", "message"),
    [
        ((2, 0.75, 8, 1.0, 10, 1.0, 1, 2.0, 0), "length 9, expected 10"),
        ((2, 0.75, 8, 1.0, -1, 1.0, 1, 2.0, 0, 4), "depth3 is -1"),
        ((2, 0.0, 8, 1.0, 10, 1.0, 1, 2.0, 0, 4), "width1 is 0.0"),
        ((2, 0.75, 8, 1.0, 10, 1.0, 1, 2.0, 2, 4), "use_se is 2"),
        ((2, 0.75, 8, 1.0, 10, 1.0, 1, 2.0, 0, 0), "n_branches is 0"),
    ],
)
def test_invalid_encodings_are_rejected_with_a_reason(encoding: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        encoding_to_net(encoding)


def test_closed_form_profile_equals_the_engines_measurements(encodings: list[tuple]) -> None:
    from nastune.profiling import profile_encodings

    sample = random.Random(4).sample(encodings, 3)
    table = profile_encodings(
        encoding_to_net, sample, torch.rand(2, 3, 64, 48), metrics=("params", "params_test", "flops")
    )
    expected = closed_form_profile(sample, 10, input_shape=(2, 3, 64, 48))

    assert table.failures() == {}
    for metric in ("params", "params_test", "flops"):
        assert table.metrics[metric].tolist() == expected[metric], metric
