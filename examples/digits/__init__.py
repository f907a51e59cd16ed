"""Digits CNN space: 1,152 mixed numeric/categorical encodings, the torch CNN for 8x8 digits, the split, the table."""

from .data import (
    N_CLASSES,
    SPLIT_FRACTIONS,
    SPLIT_SEED,
    DigitsSplit,
    load_split,
    save_hf_dataset,
    split_indices,
    to_hf_dataset,
)
from .net import CHOICES, ENCODING_FIELDS, INPUT_SHAPE, DigitsCNN, decode, encoding_to_net
from .space import N_ENCODINGS, Encoding, build_encodings, encoding_index
from .table import COLUMNS, FIDELITY_EPOCHS, SEEDS, DigitsTable, default_table_path, load_table
from .train import TrainResult, count_flops, train_and_evaluate

__all__ = [
    "CHOICES",
    "COLUMNS",
    "ENCODING_FIELDS",
    "FIDELITY_EPOCHS",
    "INPUT_SHAPE",
    "N_CLASSES",
    "N_ENCODINGS",
    "SEEDS",
    "SPLIT_FRACTIONS",
    "SPLIT_SEED",
    "DigitsCNN",
    "DigitsSplit",
    "DigitsTable",
    "Encoding",
    "TrainResult",
    "build_encodings",
    "count_flops",
    "decode",
    "default_table_path",
    "encoding_index",
    "encoding_to_net",
    "load_split",
    "load_table",
    "save_hf_dataset",
    "split_indices",
    "to_hf_dataset",
    "train_and_evaluate",
]
