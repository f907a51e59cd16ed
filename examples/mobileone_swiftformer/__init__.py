"""MobileOne-SwiftFormer hybrid search space of the paper (section 4.2, Table 3)."""

from .net import SKELETONS, HybridNet, Skeleton
from .space import (
    ENCODING_FIELDS,
    MOBILEONE_S0_ENCODING,
    SWIFTFORMER_XS_ENCODING,
    build_encodings,
    decode,
    encoding_to_net,
)

__all__ = [
    "ENCODING_FIELDS",
    "MOBILEONE_S0_ENCODING",
    "SKELETONS",
    "SWIFTFORMER_XS_ENCODING",
    "HybridNet",
    "Skeleton",
    "build_encodings",
    "decode",
    "encoding_to_net",
]
