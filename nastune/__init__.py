"""nastune: neural-architecture tuning with a pretrained deep-ensemble surrogate (Django-free engine).

The public surface is ``__all__``; everything else is internal. Names are imported on first use
(PEP 562), so a process that needs only the light modules (``nastune.storage``, ``nastune.analysis``,
``nastune.errors``: the web server) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    "Acquisition": "nastune.acquisition",
    "ExpectedImprovement": "nastune.acquisition",
    "ThompsonSampling": "nastune.acquisition",
    "UpperConfidenceBound": "nastune.acquisition",
    "BundleError": "nastune.errors",
    "EncodingError": "nastune.errors",
    "NastuneError": "nastune.errors",
    "ProfilingError": "nastune.errors",
    "SearchError": "nastune.errors",
    "Evaluator": "nastune.evaluators",
    "TabularEvaluator": "nastune.evaluators.tabular",
    "best_curve_figure": "nastune.plots",
    "PROFILE_METRICS": "nastune.profiling",
    "PROXY_METRICS": "nastune.profiling",
    "ProfileTable": "nastune.profiling",
    "profile_encodings": "nastune.profiling",
    "Proposal": "nastune.search",
    "SearchInstance": "nastune.search",
    "Encodings": "nastune.space",
    "SearchSpace": "nastune.space",
    "create_search_space": "nastune.space",
    "load_search_space": "nastune.space",
    "InMemoryStorage": "nastune.storage",
    "JSONFileStorage": "nastune.storage",
    "SearchStorage": "nastune.storage",
    "DeepEnsemble": "nastune.surrogate",
}

__all__ = [
    "PROFILE_METRICS",
    "PROXY_METRICS",
    "Acquisition",
    "BundleError",
    "DeepEnsemble",
    "EncodingError",
    "Encodings",
    "Evaluator",
    "ExpectedImprovement",
    "InMemoryStorage",
    "JSONFileStorage",
    "NastuneError",
    "ProfileTable",
    "ProfilingError",
    "Proposal",
    "SearchError",
    "SearchInstance",
    "SearchSpace",
    "SearchStorage",
    "TabularEvaluator",
    "ThompsonSampling",
    "UpperConfidenceBound",
    "best_curve_figure",
    "create_search_space",
    "load_search_space",
    "profile_encodings",
]

if TYPE_CHECKING:
    from nastune.acquisition import Acquisition, ExpectedImprovement, ThompsonSampling, UpperConfidenceBound
    from nastune.errors import BundleError, EncodingError, NastuneError, ProfilingError, SearchError
    from nastune.evaluators import Evaluator
    from nastune.evaluators.tabular import TabularEvaluator
    from nastune.plots import best_curve_figure
    from nastune.profiling import PROFILE_METRICS, PROXY_METRICS, ProfileTable, profile_encodings
    from nastune.search import Proposal, SearchInstance
    from nastune.space import Encodings, SearchSpace, create_search_space, load_search_space
    from nastune.storage import InMemoryStorage, JSONFileStorage, SearchStorage
    from nastune.surrogate import DeepEnsemble


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'nastune' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
