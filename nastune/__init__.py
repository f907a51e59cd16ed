"""nastune: neural-architecture tuning with a pretrained deep-ensemble surrogate (Django-free engine).

The public surface is ``__all__``; everything else is internal.
"""

from nastune.acquisition import Acquisition, ExpectedImprovement, ThompsonSampling, UpperConfidenceBound
from nastune.errors import BundleError, EncodingError, NastuneError, ProfilingError, SearchError
from nastune.evaluators import Evaluator
from nastune.evaluators.tabular import TabularEvaluator
from nastune.plots import best_curve_figure
from nastune.profiling import PROFILE_METRICS, PROXY_METRICS, ProfileTable, profile_encodings
from nastune.search import Proposal, SearchInstance
from nastune.space import Encodings, SearchSpace, create_search_space, load_search_space
from nastune.surrogate import DeepEnsemble

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
    "NastuneError",
    "ProfileTable",
    "ProfilingError",
    "Proposal",
    "SearchError",
    "SearchInstance",
    "SearchSpace",
    "TabularEvaluator",
    "ThompsonSampling",
    "UpperConfidenceBound",
    "best_curve_figure",
    "create_search_space",
    "load_search_space",
    "profile_encodings",
]
