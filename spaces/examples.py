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

    def build_encodings(self) -> list[Any]:
        return list(importlib.import_module(self.module).build_encodings())

    def module_source(self) -> str:
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
}
NAMES = tuple(EXAMPLES)


def get(name: str) -> Example | None:
    return EXAMPLES.get(name)
