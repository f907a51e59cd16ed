"""MobileOne-based search space of the paper (section 4.1, Table 1) and the MobileOne network."""

from .net import MobileOne, MobileOneBlock, SqueezeExcite, reparameterize
from .space import (
    ENCODING_FIELDS,
    S0_ENCODING,
    apply_filters,
    build_encodings,
    closed_form_profile,
    count_flops,
    count_params,
    encoding_to_net,
)

__all__ = [
    "ENCODING_FIELDS",
    "S0_ENCODING",
    "MobileOne",
    "MobileOneBlock",
    "SqueezeExcite",
    "apply_filters",
    "build_encodings",
    "closed_form_profile",
    "count_flops",
    "count_params",
    "encoding_to_net",
    "reparameterize",
]
