"""nastune: neural-architecture tuning with a pretrained deep-ensemble surrogate (Django-free engine).

The public surface is ``__all__``; everything else is internal.
"""

from nastune.errors import BundleError, EncodingError, NastuneError, ProfilingError, SearchError
from nastune.profiling import PROFILE_METRICS, PROXY_METRICS, ProfileTable, profile_encodings
from nastune.space import Encodings, SearchSpace, create_search_space, load_search_space

__all__ = [
    "PROFILE_METRICS",
    "PROXY_METRICS",
    "BundleError",
    "EncodingError",
    "Encodings",
    "NastuneError",
    "ProfileTable",
    "ProfilingError",
    "SearchError",
    "SearchSpace",
    "create_search_space",
    "load_search_space",
    "profile_encodings",
]
