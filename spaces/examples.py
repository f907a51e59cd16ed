"""NASWeb's ready search spaces, offered in the "New space" form and used by the demo."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Example:
    """One example space. ``profile_table`` gives known metrics instead of profiling (NB201)."""

    name: str
    title: str
    description: str
    module: str
    sample_input_shape: tuple[int, ...]
    max_profiled: int | None = None
    profile_metrics: tuple[str, ...] | None = None
    profile_table: Callable[[], dict[str, np.ndarray]] | None = None
    source: str | None = None  # the module a worker runs, when a one-line import does not fit

    def build_encodings(self) -> list[Any]:
        return list(importlib.import_module(self.module).build_encodings())

    def module_source(self) -> str:
        if self.source is not None:
            return self.source
        # The example's code ships with NASWeb, so the module a worker runs is a one-line import.
        return (
            f'"""NASWeb example space {self.name!r}: the network builder lives in {self.module}."""\n'
            f"from {self.module} import encoding_to_net\n\n__all__ = ['encoding_to_net']\n"
        )


def _nb201_profile() -> dict[str, np.ndarray]:
    """Params (analytic, 10 classes), FLOPs (analytic) and latency (benchmark table, CIFAR-10)."""
    nb201 = importlib.import_module("examples.nb201")
    encodings = np.asarray(nb201.build_encodings())
    table = nb201.load_table()
    return {
        "params": nb201.count_params_matrix(encodings).astype(float),
        "flops": nb201.count_flops_matrix(encodings).astype(float),
        "latency": table.latency_s["cifar10"],
    }


def _mobileone_profile() -> dict[str, np.ndarray]:
    """Closed-form params (train and test time) and FLOPs of every candidate: seconds, not hours."""
    mobileone = importlib.import_module("examples.mobileone")
    profile = mobileone.closed_form_profile(mobileone.build_encodings(), input_shape=(1, 3, 224, 224))
    return {metric: np.asarray(values, dtype=float) for metric, values in profile.items()}


# The image-classification evaluator hands every image over as RGB, so the demo's networks take 3 channels.
DIGITS_IN_CHANNELS = 3


def _digits_profile() -> dict[str, np.ndarray]:
    """Closed-form params and FLOPs of every digits CNN on a 3x8x8 image (what the evaluator feeds it).

    FLOPs count convolutions and the classifier as ``torch.utils.flop_counter`` does (2 x multiply-adds);
    ``tests/examples/test_digits_example_space.py`` checks both against the built networks.
    """
    digits = importlib.import_module("examples.digits")
    params, flops = [], []
    for n_blocks, width, kernel, _activation, _skip, pooling, norm in digits.build_encodings():
        per_conv_extra = width if norm == "none" else 2 * width  # conv bias, or BatchNorm's weight and bias
        block_area = 64 if pooling == "none" else 16
        stem = DIGITS_IN_CHANNELS * width * kernel * kernel
        block = width * width * kernel * kernel
        params.append(stem + per_conv_extra + n_blocks * (block + per_conv_extra) + width * 10 + 10)
        flops.append(2 * (stem * 64 + n_blocks * block * block_area + width * 10))
    return {"params": np.asarray(params, dtype=float), "flops": np.asarray(flops, dtype=float)}


_DIGITS_SOURCE = f'''"""NASWeb example space 'digits': the CNN lives in examples.digits; images arrive as RGB."""
from examples.digits import encoding_to_net as _digits_cnn

__all__ = ["encoding_to_net"]


def encoding_to_net(encoding, n_classes=10):
    return _digits_cnn(encoding, n_classes=n_classes, in_channels={DIGITS_IN_CHANNELS})
'''

EXAMPLES: dict[str, Example] = {
    "nb201": Example(
        name="nb201",
        title="NAS-Bench-201 cell space",
        description="The 15,625 cells of NAS-Bench-201 (6 edges x 5 operations) on 32x32 images; "
                    "profile taken from the benchmark table.",
        module="examples.nb201",
        sample_input_shape=(1, 3, 32, 32),
        profile_table=_nb201_profile,
    ),
    "mobileone": Example(
        name="mobileone",
        title="MobileOne (depth and width per stage)",
        description="MobileOne-s0 varied in depth and width per stage, SE and branches "
                    "(paper Table 1), filtered to 19-22 blocks and 0.86M-1.26M test-time parameters.",
        module="examples.mobileone",
        sample_input_shape=(1, 3, 224, 224),
        profile_table=_mobileone_profile,
    ),
    "mobileone_swiftformer": Example(
        name="mobileone_swiftformer",
        title="MobileOne-SwiftFormer hybrid",
        description="Per stage: convolution type and number of SwiftFormer attention blocks (paper Table 3); "
                    "includes SwiftFormer-XS and MobileOne-s0.",
        module="examples.mobileone_swiftformer",
        sample_input_shape=(1, 3, 224, 224),
        # About 2 candidates/s for params + FLOPs on 2 cores: a seeded subset, the surrogate learns the rest.
        max_profiled=1000,
        profile_metrics=("params", "params_test", "flops"),
    ),
    "digits": Example(
        name="digits",
        title="Digits CNN (8x8 handwritten digits, trains on a CPU)",
        description="1,152 small CNNs (blocks, width, kernel, activation, skip, pooling, norm) for scikit-learn's "
                    "bundled 8x8 digits; each trains in seconds on one CPU core.",
        module="examples.digits",
        sample_input_shape=(1, DIGITS_IN_CHANNELS, 8, 8),
        profile_table=_digits_profile,
        source=_DIGITS_SOURCE,
    ),
}
NAMES = tuple(EXAMPLES)


def get(name: str) -> Example | None:
    return EXAMPLES.get(name)
