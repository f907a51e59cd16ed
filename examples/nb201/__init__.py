"""NAS-Bench-201 cell space: 15,625 encodings, the real PyTorch network, the benchmark table, features."""

from .net import EDGES, OPS, NB201Network, encoding_to_net
from .space import (
    PATHS,
    arch_str,
    build_encodings,
    count_flops,
    count_flops_matrix,
    count_params,
    count_params_matrix,
    encoding_index,
    features,
    ops_code,
)
from .table import DATASETS, INPUT_SIZE, N_CLASSES, NB201Table, default_csv_path, load_table

__all__ = [
    "DATASETS",
    "EDGES",
    "INPUT_SIZE",
    "N_CLASSES",
    "OPS",
    "PATHS",
    "NB201Network",
    "NB201Table",
    "arch_str",
    "build_encodings",
    "count_flops",
    "count_flops_matrix",
    "count_params",
    "count_params_matrix",
    "default_csv_path",
    "encoding_index",
    "encoding_to_net",
    "features",
    "load_table",
    "ops_code",
]
