"""The spaces app's one doorway into ``nastune``: validating encodings, profile tables, bundles, pretraining,
cached loading, device latencies. Nothing else in ``spaces/`` imports ``nastune``.

The light engine modules (errors, bundle files, profile tables, device-latency tables) are imported here;
what needs torch (``nastune.space``, ``nastune.profiling``) only inside the functions that use it, so the
web process does not load torch."""

from __future__ import annotations

import importlib
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from django.conf import settings

from nastune.analysis import TRANSFER_BEST, best_first, interleave_rankings
from nastune.bundle import read_bundle, write_bundle
from nastune.device_latency import DeviceLatencyError, device_metric_name, parse_latency_csv
from nastune.errors import BundleError, EncodingError, NastuneError
from nastune.profile_csv import read_profile_csv, write_profile_csv
from nasweb.filecache import FileCache
from spaces import examples
from spaces.models import SearchSpace

if TYPE_CHECKING:
    import nastune

__all__ = [
    "TRANSFER_BEST",
    "BundleError",
    "DeviceLatencyError",
    "EncodingError",
    "NastuneError",
    "best_first",
    "device_metric_name",
    "encoding_table",
    "feature_spec",
    "interleave_rankings",
    "load_bundle_space",
    "load_space",
    "parse_latency_csv",
    "profile_metrics",
    "read_bundle",
    "read_profile_csv",
    "write_bundle",
    "write_profile_csv",
]

QUALITY_SAMPLE = 300
_spaces: FileCache[nastune.SearchSpace] = FileCache(size=4)


def _engine_space(space: SearchSpace, encodings: list[Any], path: Path) -> nastune.SearchSpace:
    from nastune import create_search_space

    features = None
    example = examples.get(space.example) if space.example else None
    if example is not None:
        features = getattr(importlib.import_module(example.module), "features", None)
    from spaces.services import engine_feature_spec

    # position types the user chose in the New space form (None: the engine infers every one)
    feature_spec = engine_feature_spec(space.feature_summary or []) if features is None else None
    engine_space = create_search_space(space.name, path, encodings, features=features, feature_spec=feature_spec)
    if space.module_source:
        engine_space.module_source = space.module_source
        engine_space.module_name = "user_module"
        engine_space.function_name = "encoding_to_net"
    return engine_space


def _scratch_dir() -> Path:
    root = settings.VAR_DIR / "scratch"
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="pretrain-", dir=root))


def pretrain_and_bundle(space: SearchSpace, encodings: list[Any], profile: dict[str, np.ndarray],
                        failures: dict[int, str]) -> Path:
    """Pretrain the surrogate on every profiled metric at once and write the bundle; returns its path."""
    path = _scratch_dir() / "space.nastune"
    engine_space = _engine_space(space, encodings, path)
    engine_space.failures = dict(failures)
    engine_space.preprocess(pretraining_data=profile, seed=0, progress=False)
    return path


def surrogate_quality(space: SearchSpace, encodings: list[Any], profile: dict[str, np.ndarray]) -> dict:
    """Kendall tau of a surrogate pretrained without 10% of the profiled candidates, on those
    (:func:`nastune.analysis.held_out_kendall_tau`), with a sample of the points for the dashboard's
    predicted-vs-measured plot; empty when too few candidates were profiled."""
    from nastune.analysis import held_out_kendall_tau

    def pretrain_and_predict(training: dict[str, np.ndarray], held_out: np.ndarray) -> dict:
        engine_space = _engine_space(space, encodings, _scratch_dir() / "quality.nastune")
        engine_space.preprocess(pretraining_data=training, seed=0, progress=False, save=False)
        return engine_space.predict(held_out)

    return held_out_kendall_tau(profile, pretrain_and_predict, sample=QUALITY_SAMPLE, seed=0)


def sparse_metric_quality(space: SearchSpace, encodings: list[Any], profile: dict[str, np.ndarray],
                          metric: str) -> dict:
    """Held-out Kendall tau of a metric known for a subset only (latencies uploaded for some encodings): 20% of
    its known values are hidden, the surrogate is pretrained on the rest together with every other metric in
    full, and ranks the hidden ones; ``{}`` with fewer than 30 known values."""
    from nastune.analysis import held_out_kendall_tau

    others = {m: v for m, v in profile.items() if m != metric}

    def pretrain_and_predict(training: dict[str, np.ndarray], held_out: np.ndarray) -> dict:
        engine_space = _engine_space(space, encodings, _scratch_dir() / "quality.nastune")
        engine_space.preprocess(pretraining_data={**others, **training}, seed=0, progress=False, save=False)
        return {metric: engine_space.predict(held_out)[metric]}

    return held_out_kendall_tau({metric: profile[metric]}, pretrain_and_predict, held_out_share=0.2,
                                sample=QUALITY_SAMPLE, seed=0)


def load_space(space: SearchSpace) -> nastune.SearchSpace:
    """The space's bundle as a ``nastune.SearchSpace`` (cached per process by file and mtime)."""
    from nastune import load_search_space

    return _spaces.get(space.bundle_file.path, load_search_space)


def finite_or_none(value: Any) -> float | None:
    """A float for JSON: NaN and infinities become ``None``."""
    if value is None:
        return None
    number = float(value)
    return number if np.isfinite(number) else None


def prediction_rows(indices: list[int], encodings: Any, predicted: dict[str, tuple[np.ndarray, np.ndarray]],
                    key: str) -> list[dict[str, Any]]:
    """``[{index, encoding, <key>: {name: {mean, std}}}]`` from a surrogate's ``{name: (mean, std)}``."""
    return [
        {
            "index": index,
            "encoding": list(encodings[index]),
            key: {name: {"mean": finite_or_none(mean[row]), "std": finite_or_none(std[row])}
                  for name, (mean, std) in predicted.items()},
        }
        for row, index in enumerate(indices)
    ]


def encoding_table(encodings: list[Any]) -> Any:
    """The engine's validated, column-stored encodings.

    Raises:
        EncodingError: the encodings are not usable (the message names the encoding and the fix).
    """
    from nastune.space import validate_encodings

    return validate_encodings(encodings)


def feature_spec(table: Any, position_kinds: list[str | None] | None) -> list[dict[str, Any]]:
    """The engine's feature spec of ``table`` (``position_kinds``: one engine kind per position, ``None``
    to infer it; or ``None`` to infer all).

    Raises:
        EncodingError: a kind does not fit its position's values.
    """
    from nastune.space import infer_feature_spec

    return infer_feature_spec(table, position_kinds)


def profile_metrics() -> tuple[str, ...]:
    """The metrics the engine profiles by default."""
    from nastune.profiling import PROFILE_METRICS

    return PROFILE_METRICS


def load_bundle_space(path: str | Path) -> nastune.SearchSpace:
    """A bundle file as the engine's search space (not cached: an upload being imported)."""
    from nastune import load_search_space

    return load_search_space(path)
