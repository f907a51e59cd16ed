"""The web app's one doorway into ``nastune`` for spaces: pretraining, bundles, cached loading."""

from __future__ import annotations

import importlib
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from django.conf import settings

from nasweb.filecache import FileCache
from spaces import examples
from spaces.models import SearchSpace

if TYPE_CHECKING:
    import nastune

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
