"""Search spaces: validated encodings, their numeric features, profiled metrics and the pretrained surrogate.

A :class:`SearchSpace` holds ``n`` encodings of length ``L`` column by column (one numpy array per
position: ``int64``, ``float64``, ``bool``, or ``object`` only for strings and mixed positions), so a
space of a million encodings costs about ``n * L * 8`` bytes and no Python object per candidate.
"""

from __future__ import annotations

import datetime as _dt
import inspect
import json
import logging
import math
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np

from nastune.errors import BundleError, EncodingError, NastuneError, ProfilingError

if TYPE_CHECKING:
    import torch

    from nastune.surrogate import DeepEnsemble

__all__ = [
    "Encodings",
    "SearchSpace",
    "create_search_space",
    "infer_feature_spec",
    "load_search_space",
    "validate_encodings",
]

logger = logging.getLogger("nastune")

ColumnKind = Literal["int", "float", "bool", "str", "mixed"]
JSONScalar = int | float | str | bool

#: Numeric positions with at most this many distinct values are one-hot encoded by default.
ONEHOT_MAX_DISTINCT = 8

_ALLOWED_SCALARS = (bool, int, float, str)
_MIX = np.uint64(0x9E3779B97F4A7C15)
_MIX2 = np.uint64(0xBF58476D1CE4E5B9)
_HASH_SEED = np.uint64(0x243F6A8885A308D3)


# --------------------------------------------------------------------------------------------------
# Encodings: column storage, validation, hashing
# --------------------------------------------------------------------------------------------------


def _tagged(value: JSONScalar) -> tuple[int, JSONScalar]:
    """A key that keeps ``True``, ``1`` and ``"1"`` apart while ``1 == 1.0`` (JSON number semantics)."""
    if isinstance(value, bool):
        return (0, value)
    if isinstance(value, str):
        return (2, value)
    return (1, value)


def _sort_key(value: JSONScalar) -> tuple[int, Any]:
    return _tagged(value)


class Encodings(Sequence[tuple]):
    """The encodings of a search space, stored column by column.

    Behaves like a read-only ``list[tuple]``: ``len``, indexing (``enc[i] -> tuple`` of Python
    scalars), iteration, slicing and integer-array indexing (``enc[idx] -> Encodings``).

    Attributes:
        columns: one array per position, each ``(n,)``; dtype ``int64``, ``float64``, ``bool`` or
            ``object`` (strings / mixed positions only).
        kinds: the kind of each position: ``"int"``, ``"float"``, ``"bool"``, ``"str"`` or ``"mixed"``.
    """

    __slots__ = ("_codes_cache", "_lookup", "_object_codes", "columns", "kinds")

    def __init__(self, columns: Sequence[np.ndarray], kinds: Sequence[ColumnKind]) -> None:
        if len(columns) != len(kinds) or not columns:
            raise EncodingError("an encoding table needs at least one position and one kind per position")
        n = len(columns[0])
        if any(len(c) != n for c in columns):
            raise EncodingError("every position must hold one value per encoding")
        self.columns: tuple[np.ndarray, ...] = tuple(columns)
        self.kinds: tuple[ColumnKind, ...] = tuple(kinds)
        self._codes_cache: list[dict[tuple[int, JSONScalar], int] | None] | None = None
        self._lookup: tuple[np.ndarray, np.ndarray] | None = None
        self._object_codes: dict[int, np.ndarray] = {}

    # -- sequence protocol -------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.columns[0])

    @property
    def length(self) -> int:
        """Number of positions ``L`` of every encoding."""
        return len(self.columns)

    @overload
    def __getitem__(self, index: int) -> tuple: ...

    @overload
    def __getitem__(self, index: slice) -> Encodings: ...

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, int | np.integer):
            i = int(index)
            n = len(self)
            if i < -n or i >= n:
                raise IndexError(f"encoding index {i} out of range for {n} encodings")
            return tuple(col[i].item() if isinstance(col[i], np.generic) else col[i] for col in self.columns)
        if isinstance(index, slice):
            return self.take(np.arange(len(self))[index])
        return self.take(np.asarray(index))

    def __iter__(self) -> Iterator[tuple]:
        lists = [col.tolist() for col in self.columns]
        return iter(zip(*lists, strict=True))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Encodings):
            return self.kinds == other.kinds and all(
                np.array_equal(a, b) for a, b in zip(self.columns, other.columns, strict=True)
            )
        if isinstance(other, Sequence) and not isinstance(other, str | bytes):
            return len(other) == len(self) and all(
                tuple(a) == b for a, b in zip(other, self, strict=True)
            )
        return NotImplemented

    def __hash__(self) -> int:  # mutable-looking container semantics: unhashable like a list
        raise TypeError("Encodings is unhashable")

    def __repr__(self) -> str:
        head = ", ".join(repr(self[i]) for i in range(min(3, len(self))))
        more = ", ..." if len(self) > 3 else ""
        return f"Encodings(n={len(self)}, length={self.length}, [{head}{more}])"

    def tolist(self) -> list[tuple]:
        """All encodings as a list of tuples (creates ``n`` Python objects; avoid on huge spaces)."""
        return list(self)

    def take(self, indices: np.ndarray) -> Encodings:
        """The encodings at ``indices`` (``(m,)`` int or ``(n,)`` bool mask) as a new table."""
        idx = np.asarray(indices)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        return Encodings([col[idx] for col in self.columns], self.kinds)

    def matrix(self) -> np.ndarray:
        """The encodings as one ``(n, L)`` array.

        ``int64`` when every position is int/bool, ``float64`` when all are numeric, else ``object``.
        """
        if all(k in ("int", "bool") for k in self.kinds):
            return np.stack([c.astype(np.int64) for c in self.columns], axis=1)
        if all(k in ("int", "float", "bool") for k in self.kinds):
            return np.stack([c.astype(np.float64) for c in self.columns], axis=1)
        out = np.empty((len(self), self.length), dtype=object)
        for j, col in enumerate(self.columns):
            out[:, j] = col
        return out

    # -- JSON ----------------------------------------------------------------------------------------
    def to_json_obj(self) -> dict[str, Any]:
        """Column-wise JSON form (no per-row lists, so a million encodings load fast)."""
        return {
            "n": len(self),
            "length": self.length,
            "columns": [
                {"kind": kind, "values": col.tolist()} for kind, col in zip(self.kinds, self.columns, strict=True)
            ],
        }

    @classmethod
    def from_json_obj(cls, obj: Mapping[str, Any]) -> Encodings:
        """Inverse of :meth:`to_json_obj`; re-validates every value."""
        try:
            n = int(obj["n"])
            cols_obj = obj["columns"]
            columns = []
            kinds = []
            for j, c in enumerate(cols_obj):
                values = c["values"]
                if len(values) != n:
                    raise EncodingError(f"position {j} holds {len(values)} values, expected {n}")
                col, kind = _column_from_values(values, j)
                columns.append(col)
                kinds.append(kind)
        except (KeyError, TypeError) as exc:
            raise EncodingError(f"malformed encodings JSON ({exc!r})") from exc
        table = cls(columns, kinds)
        table.check_unique()
        return table

    # -- hashing, uniqueness, lookup -----------------------------------------------------------------
    def _category_maps(self) -> list[dict[tuple[int, JSONScalar], int] | None]:
        if self._codes_cache is None:
            maps: list[dict[tuple[int, JSONScalar], int] | None] = []
            for kind, col in zip(self.kinds, self.columns, strict=True):
                if kind in ("str", "mixed"):
                    mapping: dict[tuple[int, JSONScalar], int] = {}
                    for v in col.tolist():
                        mapping.setdefault(_tagged(v), len(mapping))
                    maps.append(mapping)
                else:
                    maps.append(None)
            self._codes_cache = maps
        return self._codes_cache

    def column_codes(self, j: int) -> np.ndarray:
        """``(n,)`` int64 codes of position ``j``: equal codes <=> equal values (used for hashing)."""
        kind = self.kinds[j]
        col = self.columns[j]
        if kind == "int":
            return col.astype(np.int64, copy=False)
        if kind == "bool":
            return col.astype(np.int64)
        if kind == "float":
            normalised = np.where(col == 0.0, 0.0, col)  # -0.0 == 0.0
            return normalised.astype(np.float64, copy=False).view(np.int64)
        cached = self._object_codes.get(j)
        if cached is None:
            mapping = self._category_maps()[j]
            if mapping is None:  # pragma: no cover - kinds and maps are built together
                raise EncodingError(f"position {j} has no category map")
            cached = np.fromiter((mapping[_tagged(v)] for v in col.tolist()), dtype=np.int64, count=len(col))
            self._object_codes[j] = cached
        return cached

    def row_hashes(self) -> np.ndarray:
        """``(n,)`` uint64 hash of every encoding (a splitmix-style mix of the column codes)."""
        h = np.full(len(self), _HASH_SEED, dtype=np.uint64)
        for j in range(self.length):
            h = _mix(h, self.column_codes(j).view(np.uint64))
        return h

    def _rows_equal(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``(m,)`` bool: encoding ``a[k]`` equals encoding ``b[k]``."""
        same = np.ones(len(a), dtype=bool)
        for j in range(self.length):
            codes = self.column_codes(j)
            same &= codes[a] == codes[b]
        return same

    def check_unique(self) -> None:
        """Raise :class:`EncodingError` naming the first encoding that repeats an earlier one."""
        h = self.row_hashes()
        order = np.argsort(h, kind="stable")
        sorted_h = h[order]
        self._lookup = (sorted_h, order)
        candidates = np.flatnonzero(sorted_h[1:] == sorted_h[:-1])
        if len(candidates) == 0:
            return
        first, second = order[candidates], order[candidates + 1]
        same = self._rows_equal(first, second)
        if not same.any():
            return
        later = np.minimum(first, second)[same]
        dup_later = np.maximum(first, second)[same]
        k = int(np.argmin(dup_later))
        i, j = int(dup_later[k]), int(later[k])
        n_dup = int(same.sum())
        raise EncodingError(
            f"encoding {i} {self[i]!r} is a duplicate of encoding {j}"
            f" ({n_dup} duplicate{'s' if n_dup > 1 else ''} in all); every encoding must be unique"
            " - remove the repeats, e.g. encodings = list(dict.fromkeys(map(tuple, encodings)))"
        )

    def _sorted_lookup(self) -> tuple[np.ndarray, np.ndarray]:
        if self._lookup is None:
            h = self.row_hashes()
            order = np.argsort(h, kind="stable")
            self._lookup = (h[order], order)
        return self._lookup

    def code_of(self, j: int, value: Any) -> int | None:
        """The code (see :meth:`column_codes`) that ``value`` would have at position ``j``, or ``None``."""
        kind = self.kinds[j]
        if isinstance(value, np.generic):
            value = value.item()
        if kind == "bool":
            return int(value) if isinstance(value, bool) else None
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            return None if kind != "mixed" or not isinstance(value, bool) else self._mapped(j, value)
        if kind == "int":
            if isinstance(value, int):
                return value if -(2**63) <= value < 2**63 else None
            if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
                return int(value)
            return None
        if kind == "float":
            if isinstance(value, str) or not math.isfinite(value):
                return None
            f = float(value)
            return int(np.array([0.0 if f == 0.0 else f], dtype=np.float64).view(np.int64)[0])
        return self._mapped(j, value)

    def _mapped(self, j: int, value: JSONScalar) -> int | None:
        mapping = self._category_maps()[j]
        return None if mapping is None else mapping.get(_tagged(value))

    def _query_codes(self, query: Encodings) -> tuple[np.ndarray, np.ndarray]:
        """``(m, L)`` codes of ``query`` in this table's code system and ``(m,)`` bool "all values known"."""
        m = len(query)
        codes = np.zeros((m, self.length), dtype=np.int64)
        known = np.ones(m, dtype=bool)
        for j in range(self.length):
            kind, qkind = self.kinds[j], query.kinds[j]
            if kind == qkind and kind in ("int", "bool", "float"):
                codes[:, j] = query.column_codes(j)
            elif kind == "float" and qkind == "int":
                f = query.columns[j].astype(np.float64)
                codes[:, j] = np.where(f == 0.0, 0.0, f).view(np.int64)
            else:
                for k, v in enumerate(query.columns[j].tolist()):
                    c = self.code_of(j, v)
                    if c is None:
                        known[k] = False
                    else:
                        codes[k, j] = c
        return codes, known

    def indices_of(self, query: Sequence[Sequence[JSONScalar]] | Encodings) -> np.ndarray:
        """``(m,)`` int64 index of every encoding in ``query``, ``-1`` where it is not in this table."""
        q = query if isinstance(query, Encodings) else validate_encodings(query, check_unique=False)
        result = np.full(len(q), -1, dtype=np.int64)
        if q.length != self.length:
            return result
        codes, known = self._query_codes(q)
        h = np.full(len(q), _HASH_SEED, dtype=np.uint64)
        for j in range(self.length):
            h = _mix(h, codes[:, j].view(np.uint64))
        sorted_h, order = self._sorted_lookup()
        pos = np.searchsorted(sorted_h, h)
        hit = known & (pos < len(sorted_h))
        hit[hit] &= sorted_h[pos[hit]] == h[hit]
        cand = np.where(hit, order[np.minimum(pos, len(order) - 1)], 0)
        same = hit.copy()
        for j in range(self.length):
            same &= self.column_codes(j)[cand] == codes[:, j]
        result[same] = cand[same]
        # equal-hash runs longer than one (a 64-bit collision) are resolved exactly, one by one
        for k in np.flatnonzero(hit & ~same).tolist():
            p = int(pos[k]) + 1
            while p < len(sorted_h) and sorted_h[p] == h[k]:
                c = int(order[p])
                if all(self.column_codes(j)[c] == codes[k, j] for j in range(self.length)):
                    result[k] = c
                    break
                p += 1
        return result

    def fingerprint(self) -> str:
        """sha256 hex digest of the kinds and values (identifies a space for checkpoints)."""
        import hashlib

        digest = hashlib.sha256()
        digest.update(json.dumps(list(self.kinds)).encode())
        for kind, col in zip(self.kinds, self.columns, strict=True):
            if kind in ("str", "mixed"):
                digest.update(json.dumps(col.tolist()).encode())
            else:
                digest.update(np.ascontiguousarray(col).tobytes())
        return digest.hexdigest()


def _mix(h: np.ndarray, codes: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        h = (h ^ codes) * _MIX
        h ^= h >> np.uint64(31)
        h *= _MIX2
        h ^= h >> np.uint64(29)
    return h


def _bad_value_message(i: int, j: int, value: object) -> str:
    if isinstance(value, float):
        return (
            f"encoding {i} has {value!r} at position {j}; NaN and infinity are not JSON values"
            " - use a finite number or a string such as 'inf'"
        )
    return (
        f"encoding {i} has {value!r} (type {type(value).__name__}) at position {j}; encodings may hold"
        " only JSON scalars (int, float, str, bool) - no None, lists, dicts or other objects"
    )


def _normalise_numpy_scalars(values: list[Any]) -> list[Any]:
    return [v.item() if isinstance(v, np.generic) else v for v in values]


def _column_from_values(values: list[Any], j: int, row_offset: int = 0) -> tuple[np.ndarray, ColumnKind]:
    """Validate one position's values and store them; raises :class:`EncodingError` naming the row."""
    types = set(map(type, values))
    if any(issubclass(t, np.generic) for t in types):
        values = _normalise_numpy_scalars(values)
        types = set(map(type, values))
    bad_types = types - set(_ALLOWED_SCALARS)
    if bad_types:
        for i, v in enumerate(values):
            if type(v) in bad_types:
                raise EncodingError(_bad_value_message(i + row_offset, j, v))
    n = len(values)
    if types == {bool}:
        return np.fromiter(values, dtype=bool, count=n), "bool"
    if types == {int}:
        try:
            return np.fromiter(values, dtype=np.int64, count=n), "int"
        except OverflowError:
            for i, v in enumerate(values):
                if not -(2**63) <= v < 2**63:
                    raise EncodingError(
                        f"encoding {i + row_offset} has {v} at position {j}, outside the 64-bit integer range;"
                        " use a smaller number or a string"
                    ) from None
            raise
    if types <= {int, float}:
        col = np.fromiter(values, dtype=np.float64, count=n)
        finite = np.isfinite(col)
        if not finite.all():
            i = int(np.argmin(finite))
            raise EncodingError(_bad_value_message(i + row_offset, j, values[i]))
        return col, "float"
    col = np.empty(n, dtype=object)
    col[:] = values
    if float in types:
        for i, v in enumerate(values):
            if type(v) is float and not math.isfinite(v):
                raise EncodingError(_bad_value_message(i + row_offset, j, v))
    return col, ("str" if types == {str} else "mixed")


def validate_encodings(encodings: Any, *, check_unique: bool = True) -> Encodings:
    """Turn user encodings into an :class:`Encodings` table or raise :class:`EncodingError` with a fix.

    Accepts a list of equal-length sequences of JSON scalars or an ``(n, L)`` numeric / string array.
    """
    if isinstance(encodings, Encodings):
        if check_unique:
            encodings.check_unique()
        return encodings
    if isinstance(encodings, np.ndarray):
        return _validate_array(encodings, check_unique=check_unique)
    if isinstance(encodings, str | bytes | Mapping) or not isinstance(encodings, Iterable):
        raise EncodingError(
            f"encodings must be a list of equal-length sequences of JSON scalars, got {type(encodings).__name__}"
        )
    rows = encodings if isinstance(encodings, Sequence) else list(encodings)
    n = len(rows)
    if n == 0:
        raise EncodingError("encodings is empty; a search space needs at least one encoding")
    row_types = set(map(type, rows))
    if not row_types <= {tuple, list}:
        converted = []
        for i, row in enumerate(rows):
            if isinstance(row, str | bytes | Mapping) or not isinstance(row, Sequence | np.ndarray):
                raise EncodingError(
                    f"encoding {i} is {row!r} (type {type(row).__name__}); each encoding must be a list or"
                    " tuple of JSON scalars, e.g. (3, 0.5, 'relu')"
                )
            if isinstance(row, np.ndarray) and row.ndim != 1:
                raise EncodingError(f"encoding {i} is a {row.ndim}-d array; each encoding must be 1-d")
            converted.append(tuple(row.tolist()) if isinstance(row, np.ndarray) else tuple(row))
        rows = converted
    lengths = np.fromiter(map(len, rows), dtype=np.int64, count=n)
    length = int(lengths[0])
    ragged = np.flatnonzero(lengths != length)
    if len(ragged):
        i = int(ragged[0])
        raise EncodingError(
            f"encoding {i} has length {int(lengths[i])}, expected {length} (the length of encoding 0);"
            " every encoding must have the same length - pad optional positions with a placeholder value"
        )
    if length == 0:
        raise EncodingError("encodings have length 0; each encoding needs at least one value")
    columns: list[np.ndarray] = []
    kinds: list[ColumnKind] = []
    for j in range(length):
        values = list(map(itemgetter(j), rows))
        col, kind = _column_from_values(values, j)
        columns.append(col)
        kinds.append(kind)
    table = Encodings(columns, kinds)
    if check_unique:
        table.check_unique()
    return table


def _validate_array(array: np.ndarray, *, check_unique: bool) -> Encodings:
    if array.ndim != 2:
        raise EncodingError(
            f"an encodings array must be 2-d (n_encodings, length), got shape {array.shape}"
        )
    if array.shape[0] == 0:
        raise EncodingError("encodings is empty; a search space needs at least one encoding")
    if array.shape[1] == 0:
        raise EncodingError("encodings have length 0; each encoding needs at least one value")
    if array.dtype == object:
        return validate_encodings(list(map(tuple, array.tolist())), check_unique=check_unique)
    columns: list[np.ndarray] = []
    kinds: list[ColumnKind] = []
    for j in range(array.shape[1]):
        col = array[:, j]
        if array.dtype.kind == "b":
            columns.append(col.astype(bool))
            kinds.append("bool")
        elif array.dtype.kind in "iu":
            if array.dtype.kind == "u" and array.dtype.itemsize == 8 and (col > np.iinfo(np.int64).max).any():
                i = int(np.argmax(col > np.iinfo(np.int64).max))
                raise EncodingError(f"encoding {i} has {col[i]} at position {j}, outside the 64-bit integer range")
            columns.append(col.astype(np.int64))
            kinds.append("int")
        elif array.dtype.kind == "f":
            finite = np.isfinite(col)
            if not finite.all():
                i = int(np.argmin(finite))
                raise EncodingError(_bad_value_message(i, j, float(col[i])))
            columns.append(col.astype(np.float64))
            kinds.append("float")
        elif array.dtype.kind == "U":
            obj = np.empty(len(col), dtype=object)
            obj[:] = col.tolist()
            columns.append(obj)
            kinds.append("str")
        else:
            raise EncodingError(
                f"an encodings array of dtype {array.dtype} cannot hold JSON scalars; use int, float, bool or str"
            )
    table = Encodings(columns, kinds)
    if check_unique:
        table.check_unique()
    return table


# --------------------------------------------------------------------------------------------------
# Features
# --------------------------------------------------------------------------------------------------

FeatureKind = Literal["onehot", "numeric", "log", "binary"]
_FEATURE_KINDS = ("onehot", "numeric", "log", "binary")


def _infer_position_spec(
    kind: ColumnKind, col: np.ndarray, j: int, requested: Any, onehot_max: int
) -> dict[str, Any]:
    if isinstance(requested, Mapping):
        spec = dict(requested)
        if spec.get("kind") not in _FEATURE_KINDS:
            raise EncodingError(
                f"feature spec for position {j} has kind {spec.get('kind')!r}; choose one of {_FEATURE_KINDS}"
            )
        requested_kind = spec["kind"]
    else:
        spec = {}
        requested_kind = requested
        if requested_kind is not None and requested_kind not in _FEATURE_KINDS:
            raise EncodingError(
                f"feature kind {requested_kind!r} for position {j} is unknown; choose one of {_FEATURE_KINDS}"
            )
    numeric = kind in ("int", "float")
    if requested_kind is None:
        if kind == "bool":
            requested_kind = "binary"
        elif not numeric:
            requested_kind = "onehot"
        else:
            distinct = np.unique(col)
            if len(distinct) <= onehot_max:
                requested_kind = "onehot"
            else:
                lo, hi = float(distinct[0]), float(distinct[-1])
                requested_kind = "log" if lo > 0 and hi / lo >= 64 else "numeric"
    if requested_kind in ("numeric", "log") and not (numeric or kind == "bool"):
        raise EncodingError(
            f"position {j} holds {kind} values, which cannot be used as numbers; use kind 'onehot' for it"
        )
    if requested_kind == "binary":
        if kind == "bool":
            return {"kind": "binary", "true": True}
        values = spec.get("values") or sorted({_tagged(v) for v in col.tolist()})
        if "values" not in spec:
            values = [v for _, v in values]
        if len(values) > 2:
            raise EncodingError(
                f"position {j} has {len(values)} distinct values; kind 'binary' needs at most 2 - use 'onehot'"
            )
        return {"kind": "binary", "true": spec.get("true", values[-1])}
    if requested_kind == "onehot":
        if "values" in spec:
            values = list(spec["values"])
        elif numeric or kind == "bool":
            values = np.unique(col).tolist()
        else:
            values = sorted({_tagged(v) for v in col.tolist()}, key=_sort_key)
            values = [v for _, v in values]
        return {"kind": "onehot", "values": values}
    # numeric / log
    x = col.astype(np.float64)
    if requested_kind == "log":
        if (x <= 0).any():
            raise EncodingError(f"position {j} has values <= 0; kind 'log' needs positive numbers - use 'numeric'")
        x = np.log(x)
    center = float(spec.get("center", x.mean()))
    scale = float(spec.get("scale", x.std()))
    return {"kind": requested_kind, "center": center, "scale": scale if scale > 0 else 1.0}


def infer_feature_spec(
    encodings: Encodings,
    overrides: Sequence[Any] | Mapping[int, Any] | None = None,
    *,
    onehot_max: int = ONEHOT_MAX_DISTINCT,
) -> list[dict[str, Any]]:
    """Decide how each position becomes numeric features.

    Defaults: bool -> ``binary`` (one 0/1 column); strings or mixed -> ``onehot``; numbers with at most
    ``onehot_max`` distinct values -> ``onehot``; other numbers -> ``numeric`` (z-scored), or ``log``
    (z-scored log) when all are positive and span a factor of 64 or more.

    Args:
        encodings: the validated table.
        overrides: per-position kind (``"onehot"``, ``"numeric"``, ``"log"``, ``"binary"``, ``None`` =
            infer) or a full spec dict, as a list of length ``L`` or a ``{position: kind}`` mapping.
        onehot_max: distinct-value threshold for one-hot encoding of numeric positions.

    Returns:
        One JSON-serialisable spec dict per position.
    """
    length = encodings.length
    if overrides is None:
        per_position: list[Any] = [None] * length
    elif isinstance(overrides, Mapping):
        per_position = [None] * length
        for key, value in overrides.items():
            if not isinstance(key, int) or not 0 <= key < length:
                raise EncodingError(f"feature override for position {key!r}: positions are 0..{length - 1}")
            per_position[key] = value
    else:
        per_position = list(overrides)
        if len(per_position) != length:
            raise EncodingError(
                f"feature_spec has {len(per_position)} entries, expected {length} (one per position, None = infer)"
            )
    return [
        _infer_position_spec(kind, col, j, req, onehot_max)
        for j, (kind, col, req) in enumerate(zip(encodings.kinds, encodings.columns, per_position, strict=True))
    ]


def _onehot_codes(col: np.ndarray, kind: ColumnKind, values: Sequence[JSONScalar]) -> np.ndarray:
    """``(n,)`` position of each value of ``col`` in ``values`` (-1 when absent), vectorised for numbers."""
    numeric_values = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    if kind in ("int", "float") and numeric_values and values:
        table = np.asarray(values, dtype=np.float64)
        order = np.argsort(table, kind="stable")
        sorted_table = table[order]
        x = col.astype(np.float64)
        pos = np.clip(np.searchsorted(sorted_table, x), 0, len(table) - 1)
        return np.where(sorted_table[pos] == x, order[pos], -1).astype(np.int64)
    if kind == "bool" and all(isinstance(v, bool) for v in values):
        lookup_bool = np.full(2, -1, dtype=np.int64)
        for k, v in enumerate(values):
            lookup_bool[int(v)] = k
        return lookup_bool[col.astype(np.int64)]
    lookup = {_tagged(v): k for k, v in enumerate(values)}
    return np.fromiter((lookup.get(_tagged(v), -1) for v in col.tolist()), dtype=np.int64, count=len(col))


def features_from_spec(encodings: Encodings, spec: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """Compute the ``(n, d)`` float32 feature matrix of ``encodings`` from a feature spec."""
    n = len(encodings)
    widths = [len(s["values"]) if s["kind"] == "onehot" else 1 for s in spec]
    out = np.zeros((n, sum(widths)), dtype=np.float32)
    offset = 0
    for j, (s, width) in enumerate(zip(spec, widths, strict=True)):
        col = encodings.columns[j]
        kind = s["kind"]
        if kind == "onehot":
            codes = _onehot_codes(col, encodings.kinds[j], s["values"])
            if (codes < 0).any():
                i = int(np.argmax(codes < 0))
                raise EncodingError(
                    f"encoding {i} has {encodings[i][j]!r} at position {j}, which is not among the one-hot values"
                    f" {s['values']!r} of the feature spec"
                )
            out[np.arange(n), offset + codes] = 1.0
        elif kind == "binary":
            true_value = s["true"]
            out[:, offset] = np.fromiter(
                (_tagged(v) == _tagged(true_value) for v in col.tolist()), dtype=bool, count=n
            )
        else:
            x = col.astype(np.float64)
            if kind == "log":
                x = np.log(np.maximum(x, np.finfo(np.float64).tiny))
            out[:, offset] = (x - s["center"]) / s["scale"]
        offset += width
    return out


def feature_names(spec: Sequence[Mapping[str, Any]]) -> list[str]:
    """Human-readable name of every feature column, e.g. ``"2=nor_conv_3x3"`` or ``"5 (log)"``."""
    names: list[str] = []
    for j, s in enumerate(spec):
        if s["kind"] == "onehot":
            names.extend(f"{j}={v}" for v in s["values"])
        else:
            names.append(f"{j} ({s['kind']})")
    return names


def _check_feature_matrix(features: Any, n: int) -> np.ndarray:
    try:
        arr = np.asarray(features, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise EncodingError(f"features must be a numeric (n, d) array ({exc})") from exc
    if arr.ndim != 2 or arr.shape[0] != n or arr.shape[1] == 0:
        raise EncodingError(f"features has shape {arr.shape}, expected ({n}, d) with d >= 1: one row per encoding")
    if not np.isfinite(arr).all():
        i = int(np.argmax(~np.isfinite(arr).all(axis=1)))
        raise EncodingError(f"features row {i} holds NaN or infinity; every feature must be finite")
    return np.ascontiguousarray(arr)


# --------------------------------------------------------------------------------------------------
# Search space
# --------------------------------------------------------------------------------------------------

FeatureOverride = np.ndarray | Callable[[np.ndarray], Any]


class SearchSpace:
    """A finite set of architecture encodings with features, profile and pretrained surrogate.

    Attributes:
        name: the space's name.
        save_filename: where :meth:`save` writes the bundle (and :meth:`preprocess` its checkpoint sidecar).
        encodings: :class:`Encodings`, a read-only ``list[tuple]``-like view of the ``n`` encodings.
        features: ``(n, d)`` float32, inferred from the encodings or given by the caller.
        feature_spec: the per-position spec the features came from, or ``None`` for custom features.
        profile: metric name -> ``(n,)`` float64, NaN where unknown, not profiled or failed.
        failures: index -> error message of encodings whose profiling failed.
        surrogate: the pretrained :class:`~nastune.surrogate.DeepEnsemble`, or ``None``.
        module_source: source of ``encoding_to_net``'s module when it came from a file, else ``None``.
        encoding_to_net: the callable given at creation (``None`` after loading; see
            :meth:`load_encoding_to_net`).
        filter_report: ``{"kept", "total", ...}`` of the :meth:`filter` call that made this space, else ``None``.
        parent_indices: ``(n,)`` int64 indices into the space this one was filtered from, else ``None``.
    """

    def __init__(
        self,
        name: str,
        encodings: Encodings,
        *,
        save_filename: str | Path | None = None,
        encoding_to_net: Callable[[Any], Any] | None = None,
        features: np.ndarray | None = None,
        feature_spec: list[dict[str, Any]] | None = None,
        profile: Mapping[str, np.ndarray] | None = None,
        failures: Mapping[int, str] | None = None,
        surrogate: DeepEnsemble | None = None,
        module_source: str | None = None,
        module_name: str | None = None,
        function_name: str | None = None,
        created: str | None = None,
        encoding_extras: Mapping[str, Any] | None = None,
        architecture_raw: np.ndarray | None = None,
        architecture_stats: Mapping[str, Any] | None = None,
    ) -> None:
        if features is None and feature_spec is None:
            raise EncodingError("a search space needs features or a feature spec")
        self.name = name
        self.encodings = encodings
        self.save_filename: Path | None = Path(save_filename) if save_filename is not None else None
        self.encoding_to_net = encoding_to_net
        self.feature_spec = feature_spec
        self._features = features
        self.profile: dict[str, np.ndarray] = {k: np.asarray(v, dtype=np.float64) for k, v in (profile or {}).items()}
        self.failures: dict[int, str] = dict(failures or {})
        self.surrogate = surrogate
        self.module_source = module_source
        self.module_name = module_name
        self.function_name = function_name
        self.created = created or _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
        self.filter_report: dict[str, Any] | None = None
        self.parent_indices: np.ndarray | None = None
        self.pretrain_info: dict[str, Any] | None = None
        #: earlier searches' results added with :meth:`add_results`: name -> their best encoding indices, best
        #: first (at most :data:`nastune.analysis.TRANSFER_BEST`); a search on the space evaluates them first
        #: (``initial_candidates``)
        self.transfers: dict[str, list[int]] = {}
        #: ordinal columns and pairwise interactions added to the spec's features (see :mod:`nastune.features`)
        self.encoding_extras: dict[str, Any] | None = dict(encoding_extras) if encoding_extras is not None else None
        #: ``(n, len(ARCH_FEATURE_NAMES))`` float64 structure features read from the networks (NaN = none)
        self.architecture_raw: np.ndarray | None = architecture_raw
        #: the columns of :attr:`architecture_raw` in use and their standardisation
        self.architecture_stats: dict[str, Any] | None = (
            dict(architecture_stats) if architecture_stats is not None else None
        )

    # -- basics ---------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.encodings)

    def __repr__(self) -> str:
        metrics = ", ".join(self.profile) or "none"
        return (
            f"SearchSpace(name={self.name!r}, n={len(self)}, length={self.encodings.length},"
            f" features={self.features.shape[1]}, metrics=[{metrics}], pretrained={self.surrogate is not None})"
        )

    @property
    def features(self) -> np.ndarray:
        """``(n, d)`` float32 feature matrix (computed from :attr:`feature_spec` on first use)."""
        if self._features is None:
            if self.feature_spec is None:  # pragma: no cover - guarded in __init__
                raise EncodingError("no features and no feature spec")
            from nastune import features as auto

            parts = [features_from_spec(self.encodings, self.feature_spec)]
            if self.encoding_extras is not None:
                parts.append(auto.encoding_extra_features(self.encodings, self.feature_spec, self.encoding_extras,
                                                          parts[0]))
            if self.architecture_raw is not None and self.architecture_stats is not None:
                parts.append(auto.architecture_matrix(self.architecture_raw, self.architecture_stats))
            self._features = np.ascontiguousarray(np.concatenate(parts, axis=1), dtype=np.float32)
        return self._features

    @property
    def feature_names(self) -> list[str]:
        """Name of every feature column (``"custom 0"``, ... for caller-given features)."""
        if self.feature_spec is not None:
            from nastune import features as auto

            names = feature_names(self.feature_spec)
            if self.encoding_extras is not None:
                names += auto.encoding_extra_names(self.encodings, self.feature_spec, self.encoding_extras)
            if self.architecture_raw is not None and self.architecture_stats is not None:
                names += [f"arch: {auto.ARCH_FEATURE_NAMES[k]}" for k in self.architecture_stats["columns"]]
            return names
        return [f"custom {k}" for k in range(self.features.shape[1])]

    def set_architecture_features(self, raw: np.ndarray) -> None:
        """Use ``raw`` ``(n, len(ARCH_FEATURE_NAMES))`` architecture features (NaN rows = unknown) from now on.

        Chooses the informative columns and their standardisation; a pretrained surrogate made on other
        features no longer fits and is dropped (pretrain again).
        """
        from nastune import features as auto

        raw = np.asarray(raw, dtype=np.float64)
        if raw.shape != (len(self), len(auto.ARCH_FEATURE_NAMES)):
            raise EncodingError(
                f"architecture features have shape {raw.shape}, expected ({len(self)}, {len(auto.ARCH_FEATURE_NAMES)})"
            )
        if self.feature_spec is None:
            raise EncodingError("this space uses caller-given features; architecture features are not added to them")
        self.architecture_raw = raw
        self.architecture_stats = auto.standardise_architecture(raw)
        self._features = None
        if self.surrogate is not None and self.surrogate.n_features != self.features.shape[1]:
            self.surrogate = None

    @property
    def metric_names(self) -> list[str]:
        """Names of the profiled / supplied metrics, in insertion order."""
        return list(self.profile)

    def index_of(self, encoding: Sequence[JSONScalar]) -> int:
        """Index of ``encoding`` in this space (hash lookup, ``O(log n)``, no per-candidate objects).

        Raises:
            EncodingError: the encoding is not in the space.
        """
        if isinstance(encoding, str | bytes) or not isinstance(encoding, Sequence | np.ndarray):
            raise EncodingError(f"{encoding!r} is not an encoding; pass a tuple or list of JSON scalars")
        idx = int(self.encodings.indices_of([tuple(encoding)])[0])
        if idx < 0:
            raise EncodingError(f"encoding {tuple(encoding)!r} is not in search space {self.name!r}")
        return idx

    def indices_of(self, encodings: Sequence[Sequence[JSONScalar]]) -> np.ndarray:
        """``(m,)`` int64 indices of ``encodings``, ``-1`` for those not in the space."""
        return self.encodings.indices_of(encodings)

    def _as_indices(self, encodings_or_indices: Any) -> np.ndarray:
        if isinstance(encodings_or_indices, int | np.integer):
            return np.array([int(encodings_or_indices)], dtype=np.int64)
        arr = encodings_or_indices
        if isinstance(arr, np.ndarray) and arr.ndim == 1 and arr.dtype.kind in "iu":
            idx = arr.astype(np.int64)
        elif isinstance(arr, Sequence) and len(arr) > 0 and all(isinstance(v, int | np.integer) for v in arr) \
                and not isinstance(arr, tuple):
            idx = np.asarray(arr, dtype=np.int64)
        else:
            if isinstance(arr, tuple) and arr and not isinstance(arr[0], Sequence | np.ndarray):
                arr = [arr]  # one encoding given as a tuple
            idx = self.encodings.indices_of(arr)
            if (idx < 0).any():
                k = int(np.argmax(idx < 0))
                raise EncodingError(f"encoding {tuple(list(arr)[k])!r} is not in search space {self.name!r}")
            return idx
        if len(idx) and (idx.min() < 0 or idx.max() >= len(self)):
            raise EncodingError(f"indices must lie in 0..{len(self) - 1}")
        return idx

    # -- filtering --------------------------------------------------------------------------------------
    def filter(
        self,
        predicate: Callable[..., Any] | None = None,
        *,
        vectorized: bool = False,
        keep_unknown: bool = False,
        **bounds: tuple[float | None, float | None],
    ) -> SearchSpace:
        """A new space with the encodings that satisfy every constraint.

        Args:
            predicate: ``predicate(encoding: tuple, metrics: dict[str, float]) -> bool``, called once per
                encoding; or, with ``vectorized=True``, ``predicate(matrix, profile) -> (n,) bool`` where
                ``matrix`` is :meth:`Encodings.matrix` ``(n, L)`` and ``profile`` maps metric -> ``(n,)``.
            vectorized: see ``predicate``.
            keep_unknown: keep encodings whose bounded metric is NaN (not profiled / failed); default drops them.
            **bounds: ``metric=(lo, hi)``, inclusive, either end ``None`` for open, e.g.
                ``params=(0.86e6, 1.26e6)``.

        Returns:
            The filtered space (same name, bundle path, surrogate and feature spec); its
            :attr:`filter_report` and :attr:`parent_indices` say what was kept.
        """
        n = len(self)
        mask = np.ones(n, dtype=bool)
        report_bounds: dict[str, list[float | None]] = {}
        for metric, bound in bounds.items():
            if metric not in self.profile:
                raise ProfilingError(
                    f"cannot bound {metric!r}: this space has no such metric; known metrics:"
                    f" {sorted(self.profile) or 'none (run preprocess first)'}"
                )
            if not isinstance(bound, tuple | list) or len(bound) != 2:
                raise ProfilingError(f"bound for {metric!r} must be a (lo, hi) pair, got {bound!r}")
            lo, hi = bound
            values = self.profile[metric]
            known = ~np.isnan(values)
            ok = np.ones(n, dtype=bool)
            with np.errstate(invalid="ignore"):
                if lo is not None:
                    ok &= values >= lo
                if hi is not None:
                    ok &= values <= hi
            mask &= np.where(known, ok, keep_unknown)
            report_bounds[metric] = [lo, hi]
        if predicate is not None:
            if vectorized:
                result = np.asarray(predicate(self.encodings.matrix(), dict(self.profile)))
                if result.shape != (n,):
                    raise EncodingError(f"vectorized predicate returned shape {result.shape}, expected ({n},)")
                mask &= result.astype(bool)
            else:
                names = list(self.profile)
                columns = [self.profile[m] for m in names]
                candidates = np.flatnonzero(mask)
                for i in candidates.tolist():
                    metrics = {m: float(c[i]) for m, c in zip(names, columns, strict=True)}
                    if not predicate(self.encodings[i], metrics):
                        mask[i] = False
        kept = np.flatnonzero(mask)
        if len(kept) == 0:
            raise EncodingError(
                f"the filter keeps none of the {n} encodings of {self.name!r}; loosen the bounds or the predicate"
            )
        sub = self._subset(kept)
        sub.filter_report = {
            "kept": len(kept),
            "total": n,
            "bounds": report_bounds,
            "predicate": getattr(predicate, "__name__", None) if predicate is not None else None,
            "keep_unknown": keep_unknown,
        }
        logger.info(
            "filter kept %d of %d encodings of %r (%.1f%%)", len(kept), n, self.name, 100.0 * len(kept) / n
        )
        return sub

    @property
    def filtered_size(self) -> int:
        """Number of encodings (same as ``len(space)``; named for the filter report)."""
        return len(self)

    def _subset(self, kept: np.ndarray) -> SearchSpace:
        sub = SearchSpace(
            self.name,
            self.encodings.take(kept),
            save_filename=self.save_filename,
            encoding_to_net=self.encoding_to_net,
            features=self._features[kept] if self._features is not None else None,
            feature_spec=self.feature_spec,
            profile={m: v[kept] for m, v in self.profile.items()},
            failures=None,
            surrogate=self.surrogate,
            module_source=self.module_source,
            module_name=self.module_name,
            function_name=self.function_name,
            created=self.created,
            encoding_extras=self.encoding_extras,
            architecture_raw=self.architecture_raw[kept] if self.architecture_raw is not None else None,
            architecture_stats=self.architecture_stats,
        )
        position = {int(old): new for new, old in enumerate(kept.tolist())} if self.failures else {}
        sub.failures = {position[i]: msg for i, msg in self.failures.items() if i in position}
        parent = self.parent_indices
        sub.parent_indices = parent[kept] if parent is not None else kept.astype(np.int64)
        sub.pretrain_info = self.pretrain_info
        where = {int(old): new for new, old in enumerate(kept.tolist())}
        sub.transfers = {name: [where[i] for i in ranking if i in where] for name, ranking in self.transfers.items()}
        return sub

    # -- surrogate ----------------------------------------------------------------------------------------
    def predict(self, encodings_or_indices: Any) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """What the pretrained surrogate believes about some candidates.

        Args:
            encodings_or_indices: ``(m,)`` int indices, or a list of encodings (a single tuple is one encoding).

        Returns:
            metric -> ``(mean, std)``, each ``(m,)``, in the metric's original units.
        """
        if self.surrogate is None:
            raise NastuneError(
                f"search space {self.name!r} has no pretrained surrogate; call ss.preprocess(...) or ss.pretrain()"
            )
        idx = self._as_indices(encodings_or_indices)
        return self.surrogate.predict_metrics(self.features[idx])

    def pretraining_targets(self) -> dict[str, np.ndarray]:
        """The profile metrics the surrogate pretrains on: those with a finite value, without exact copies.

        Returns:
            metric -> ``(n,)`` float64 with NaN where unknown.
        """
        targets: dict[str, np.ndarray] = {}
        for metric, values in self.profile.items():
            finite = np.isfinite(values)
            if not finite.any():
                logger.info("not pretraining on %r: no finite value", metric)
                continue
            twin = next(
                (m for m, v in targets.items() if np.array_equal(v, values, equal_nan=True)), None
            )
            if twin is not None:
                logger.info("not pretraining on %r: identical to %r", metric, twin)
                continue
            targets[metric] = values
        return targets

    def pretrain(
        self,
        *,
        seed: int = 0,
        simultaneous: bool = True,
        n_members: int = 5,
        progress: bool = True,
        holdout: float = 0.1,
        **surrogate_options: Any,
    ) -> None:
        """(Re)build and pretrain the deep-ensemble surrogate on :attr:`profile`.

        Args:
            seed: seed of the ensemble's initialisation and training.
            simultaneous: one loss over all metric heads (paper default); ``False`` = one metric at a time.
            n_members: ensemble size.
            progress: show a progress bar.
            holdout: share of the encodings (seeded, at most 5,000) whose metrics are hidden from pretraining
                to measure how well the surrogate ranks each metric (Kendall tau, in :attr:`pretrain_info`
                and :meth:`describe`); 0 = use every value, no measurement. Metrics known for less than half
                of the encodings (results added by :meth:`add_results`) are never held out.
            **surrogate_options: extra hyper-parameters passed to ``DeepEnsemble``.
        """
        from nastune.surrogate import DeepEnsemble

        targets = self.pretraining_targets()
        if not targets:
            raise ProfilingError(
                f"search space {self.name!r} has no metric to pretrain on; run ss.preprocess(sample_input=...) or"
                " pass pretraining_data={'params': [...]}"
            )
        self._choose_interactions(targets, seed)
        X = self.features
        if not 0.0 <= holdout < 1.0:
            raise ProfilingError(f"holdout must lie in [0, 1), got {holdout}")
        known_rows = np.flatnonzero(np.any([np.isfinite(v) for v in targets.values()], axis=0))
        n_held = min(5000, int(holdout * len(known_rows)))
        held = np.array([], dtype=np.int64)
        train_targets = dict(targets)
        if n_held >= 10:
            held = np.sort(np.random.default_rng([seed, 7]).choice(known_rows, size=n_held, replace=False))
            for metric, values in targets.items():
                if np.isfinite(values).sum() < 0.5 * len(values):  # sparse targets (earlier searches) are kept whole
                    continue
                hidden = values.copy()
                hidden[held] = np.nan
                train_targets[metric] = hidden
        ensemble = DeepEnsemble(
            X.shape[1], list(targets), n_members=n_members, seed=seed, **surrogate_options
        )
        stats = ensemble.pretrain(X, train_targets, simultaneous=simultaneous, progress=progress)
        taus: dict[str, float | None] = {}
        if len(held):
            from scipy.stats import kendalltau

            predicted = ensemble.predict_metrics(X[held])
            for metric, values in targets.items():
                if train_targets[metric] is values:  # not held out: no honest measurement
                    taus[metric] = None
                    continue
                ok = np.isfinite(values[held])
                tau = kendalltau(predicted[metric][0][ok], values[held][ok])[0] if ok.sum() >= 3 else math.nan
                taus[metric] = None if not math.isfinite(tau) else round(float(tau), 4)
        self.surrogate = ensemble
        self.pretrain_info = {
            "metrics": list(targets),
            "seed": seed,
            "simultaneous": simultaneous,
            "n_members": n_members,
            "options": _jsonable(surrogate_options),
            "stats": _jsonable(stats),
            "heldout": len(held),
            "heldout_kendall_tau": taus,
        }
        logger.info("pretrained %d-member surrogate of %r on %s", n_members, self.name, ", ".join(targets))

    def _choose_interactions(self, targets: Mapping[str, np.ndarray], seed: int) -> None:
        """In ``"auto"`` mode, keep the pairwise products only if they explain the pretraining metrics better."""
        extras = self.encoding_extras
        if extras is None or extras.get("mode") != "auto" or not extras.get("candidates") or self.feature_spec is None:
            return
        from nastune import features as auto

        base = features_from_spec(self.encodings, self.feature_spec)
        trial = {**extras, "interactions": extras["candidates"]}
        both = auto.encoding_extra_features(self.encodings, self.feature_spec, trial, base)
        n_ordinal = len(extras.get("ordinal", []))
        without = np.concatenate([base, both[:, :n_ordinal]], axis=1)
        verdict = auto.interactions_help(without, both[:, n_ordinal:], targets, seed=seed)
        chosen = extras["candidates"] if verdict["use"] else []
        if chosen != extras.get("interactions"):
            self._features = None
        self.encoding_extras = {**extras, "interactions": chosen, "interaction_check": verdict}
        logger.info("pairwise interactions of %r: %s (cross-validated R^2 on the metrics %s without, %s with)",
                    self.name, "used" if verdict["use"] else "not used", verdict["r2_without"], verdict["r2_with"])

    def add_results(self, name: str, results: Mapping[Any, float], *, maximize: bool | None = True) -> None:
        """Add the results of an earlier search on this space as a sparse pretraining target.

        The next :meth:`pretrain` (or :meth:`preprocess`) fits a head to them like to any profiled metric, and
        every search then starts its objective head from a combination that includes it, so a search on a
        new dataset or fidelity learns from the old one. Their best encodings (:attr:`transfers`) are also
        where a search on the space starts: it evaluates them first unless told otherwise (option
        ``initial_candidates``). The bundle carries both like the profile.

        Args:
            name: a metric name for them, e.g. ``"c10_valid"`` (letters, digits, ``_-.``).
            results: ``{encoding index or encoding tuple: value}``; encodings not given stay unknown (NaN).
            maximize: whether higher values were better in that search (``False`` for a loss or an error);
                ``None`` for values that are not a search's results (measured latencies): no ranking is kept.

        Raises:
            ProfilingError: a bad name, an encoding not in the space, or a non-finite value.
        """
        _check_metric_name(name)
        if not results:
            raise ProfilingError(f"add_results({name!r}) got no results")
        column = np.full(len(self), np.nan)
        for key, value in results.items():
            if isinstance(key, int | np.integer) and not isinstance(key, bool):
                index = int(key)
                if not 0 <= index < len(self):
                    raise ProfilingError(f"result index {index} is outside 0..{len(self) - 1}")
            else:
                try:
                    index = self.index_of(key)
                except EncodingError as exc:
                    raise ProfilingError(f"add_results({name!r}): {exc}") from exc
            v = float(value)
            if not math.isfinite(v):
                raise ProfilingError(f"add_results({name!r}): the value of encoding {index} is {value!r}, not finite")
            column[index] = v
        self.profile[name] = column
        self.transfers.pop(name, None)
        if maximize is not None:
            from nastune.analysis import best_first

            known = np.flatnonzero(np.isfinite(column))
            self.transfers[name] = best_first({int(i): float(column[i]) for i in known}, maximize=maximize)
        logger.info("added %d results as pretraining target %r of %r", int(np.isfinite(column).sum()), name, self.name)

    def describe(self) -> dict[str, Any]:
        """What the surrogate sees and how well it learned it (plain data, e.g. for a space page).

        Returns:
            ``{"name", "encodings", "features": {"total", "groups": {group: columns}}, "metrics": {metric:
            {"known": count, "heldout_kendall_tau": tau or None}}, "pretrained": bool}``; feature groups are
            ``"encoding"`` (one-hot / numeric per position), ``"ordinal"``, ``"interactions"``, ``"architecture"``
            (read from the networks), or ``"custom"`` for caller-given features.
        """
        groups: dict[str, int] = {}
        if self.feature_spec is None:
            groups["custom"] = int(self.features.shape[1])
        else:
            groups["encoding"] = sum(len(s["values"]) if s["kind"] == "onehot" else 1 for s in self.feature_spec)
            extras = self.encoding_extras or {}
            groups["ordinal"] = len(extras.get("ordinal", []))
            groups["interactions"] = len(extras.get("interactions", []))
            stats = self.architecture_stats if self.architecture_raw is not None else None
            groups["architecture"] = len(stats["columns"]) if stats else 0
        taus = (self.pretrain_info or {}).get("heldout_kendall_tau") or {}
        return {
            "name": self.name,
            "encodings": len(self),
            "features": {"total": int(self.features.shape[1]), "groups": groups},
            "metrics": {
                m: {"known": int(np.isfinite(v).sum()), "heldout_kendall_tau": taus.get(m)}
                for m, v in self.profile.items()
            },
            "pretrained": self.surrogate is not None,
        }

    # -- profiling -------------------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path | None:
        """The sidecar file where an interrupted :meth:`preprocess` keeps finished encodings."""
        if self.save_filename is None:
            return None
        return self.save_filename.with_name(self.save_filename.name + ".profiling.jsonl")

    def preprocess(
        self,
        sample_input: torch.Tensor | tuple[torch.Tensor, ...] | None = None,
        threads: int = 1,
        *,
        pretraining_data: Mapping[str, Sequence[float] | np.ndarray] | None = None,
        fraction: float | None = None,
        max_profiled: int | None = None,
        proxies: bool = False,
        seed: int = 0,
        timeout_s: float = 60.0,
        progress: bool = True,
        simultaneous: bool = True,
        n_members: int = 5,
        metrics: Sequence[str] | None = None,
        latency_repeats: int = 10,
        isolate: bool | None = None,
        pretrain: bool = True,
        save: bool = True,
        surrogate_options: Mapping[str, Any] | None = None,
        flops_device: str = "auto",
        architecture_features: bool = True,
    ) -> SearchSpace:
        """Profile the encodings (or take user metrics), pretrain the surrogate, save the bundle.

        Args:
            sample_input: input batch for the networks, e.g. ``torch.rand(16, 3, 224, 224)`` (or a tuple of
                tensors for ``net(*inputs)``). Needed unless ``pretraining_data`` covers everything.
            threads: number of worker processes profiling in parallel (spawned; each uses one torch thread).
                ``encoding_to_net`` must then be importable (defined at module level in a ``.py`` file).
            pretraining_data: ``{metric: values}``, one value (or NaN) per encoding, used instead of /
                on top of profiling.
            fraction: profile only this seeded random fraction of the encodings (huge spaces).
            max_profiled: profile at most this many encodings (seeded random subset).
            proxies: also compute training-free accuracy proxies (NASWOT, log-synflow) as extra targets.
            seed: seed of the subset, the proxies' weight initialisation and the surrogate.
            timeout_s: per-encoding time limit; an encoding over it is marked failed.
            progress: tqdm bars for profiling and pretraining.
            simultaneous: pretrain all metric heads at once (``False``: sequentially, for ablations).
            n_members: ensemble size.
            metrics: metrics to measure (default :data:`nastune.profiling.PROFILE_METRICS`).
            latency_repeats: timed forwards per encoding (median reported).
            isolate: profile in worker processes with hard timeouts; default ``threads > 1``. With
                ``isolate=False`` profiling runs in this process and a timeout can only interrupt Python code.
            pretrain: pretrain the surrogate after profiling.
            save: write the bundle to :attr:`save_filename` at the end.
            surrogate_options: extra ``DeepEnsemble`` hyper-parameters.
            flops_device: where FLOPs are counted: ``"auto"`` (meta unless a CPU network is built anyway),
                ``"meta"`` or ``"cpu"``; see :mod:`nastune.profiling`.
            architecture_features: when the space has ``encoding_to_net`` (and no caller-given features),
                read every network's structure on the meta device into features the surrogate uses
                (:mod:`nastune.features`); this happens during the profiling pass, or in a pass of its own
                (no forward, about 30 ms per NB201 network) when only ``pretraining_data`` is given.

        Returns:
            ``self``, profiled, pretrained and saved.
        """
        from nastune import profiling

        n = len(self)
        if self.save_filename is not None and not self.save_filename.parent.is_dir():
            raise ProfilingError(
                f"folder {self.save_filename.parent} of save_filename does not exist; create it first (the bundle"
                " and the profiling checkpoint are written there)"
            )
        user_data = _check_pretraining_data(pretraining_data, n) if pretraining_data is not None else {}
        want_arch = (
            architecture_features and self.encoding_to_net is not None and self.feature_spec is not None
            and self.architecture_raw is None
        )
        if sample_input is not None or not user_data:
            if self.encoding_to_net is None:
                raise ProfilingError(
                    f"search space {self.name!r} has no encoding_to_net, so it cannot be profiled; pass"
                    " encoding_to_net to create_search_space, call ss.load_encoding_to_net(), or give"
                    " pretraining_data={'params': [...], ...}"
                )
            if sample_input is None:
                raise ProfilingError(
                    "preprocess needs sample_input (e.g. torch.rand(16, 3, 224, 224)) to profile the networks,"
                    " or pretraining_data={'params': [...], ...}"
                )
            subset = _profiled_subset(n, fraction, max_profiled, seed)
            table = profiling.profile_space(
                self.encoding_to_net,
                self.encodings,
                subset,
                sample_input,
                checkpoint=self.checkpoint_path,
                fingerprint=self.encodings.fingerprint(),
                metrics=tuple(metrics) if metrics is not None else profiling.PROFILE_METRICS,
                proxies=proxies,
                seed=seed,
                timeout_s=timeout_s,
                latency_repeats=latency_repeats,
                flops_device=flops_device,
                threads=threads,
                isolate=isolate,
                progress=progress,
                architecture=want_arch,
            )
            self._take_architecture(table)
            for metric, values in table.metrics.items():
                self.profile[metric] = values
            self.failures = table.failures()
            if self.failures:
                logger.warning(
                    "%d of %d profiled encodings failed; e.g. encoding %d: %s",
                    len(self.failures), len(subset), next(iter(self.failures)),
                    next(iter(self.failures.values())).splitlines()[0],
                )
        elif want_arch and self.encoding_to_net is not None:
            # only user metrics: one pass of its own over the networks for their structure (no forward)
            import torch

            subset = _profiled_subset(n, fraction, max_profiled, seed)
            table = profiling.profile_space(
                self.encoding_to_net, self.encodings, subset, torch.zeros(1), checkpoint=self.checkpoint_path,
                fingerprint=self.encodings.fingerprint(), metrics=(), seed=seed, timeout_s=timeout_s,
                threads=threads, isolate=isolate, progress=progress, architecture=True,
            )
            self._take_architecture(table)
            failed = table.failures()
            if failed:
                logger.warning("%d of %d networks could not be read for architecture features; e.g. encoding %d: %s",
                               len(failed), len(subset), next(iter(failed)),
                               next(iter(failed.values())).splitlines()[0])
        for metric, values in user_data.items():
            self.profile[metric] = values
        if pretrain:
            self.pretrain(
                seed=seed, simultaneous=simultaneous, n_members=n_members, progress=progress,
                **dict(surrogate_options or {}),
            )
        if save and self.save_filename is not None:
            self.save()
            checkpoint = self.checkpoint_path
            if checkpoint is not None and checkpoint.exists():
                checkpoint.unlink()  # its results now live in the bundle
        return self

    def _take_architecture(self, table: Any) -> None:
        """Move the ``arch:<k>`` columns of a profiling table into :attr:`architecture_raw`."""
        from nastune.features import ARCH_FEATURE_NAMES, ARCH_PREFIX

        keys = [f"{ARCH_PREFIX}{k}" for k in range(len(ARCH_FEATURE_NAMES))]
        columns = [table.metrics.pop(key, None) for key in keys]
        for key in [k for k in table.metrics if k.startswith(ARCH_PREFIX)]:
            table.metrics.pop(key)
        if all(c is None for c in columns):
            return
        raw = np.stack([c if c is not None else np.full(len(self), np.nan) for c in columns], axis=1)
        present = np.array([c is not None for c in columns])  # a table from an older release lacks some
        raw[~np.isfinite(raw[:, present]).all(axis=1)] = np.nan  # a network read only in part counts as not read
        self.set_architecture_features(raw)

    # -- persistence ----------------------------------------------------------------------------------
    def save(self, path: str | Path | None = None) -> Path:
        """Write the bundle (atomically) to ``path`` or :attr:`save_filename`; returns the path written."""
        from nastune import bundle

        target = Path(path) if path is not None else self.save_filename
        if target is None:
            raise BundleError("no path to save to; pass save(path) or set save_filename")
        members = bundle.space_members(self)
        written = bundle.write_bundle(target, members, name=self.name, created=self.created)
        logger.info("saved search space %r (%d encodings) to %s", self.name, len(self), written)
        return written

    def load_encoding_to_net(self, directory: str | Path | None = None) -> Callable[[Any], Any]:
        """Run the bundled ``encoding_to_net`` module source and return the function. **Runs user code.**

        The source (see :attr:`module_source`) is written to ``directory`` (default: a fresh temporary
        folder), that folder is put on ``sys.path`` and the module imported, so worker processes of
        :meth:`preprocess` can import it too. Read :attr:`module_source` before calling this on a bundle
        you did not make.
        """
        import hashlib
        import importlib
        import tempfile

        if self.module_source is None or self.function_name is None:
            raise BundleError(
                f"search space {self.name!r} carries no encoding_to_net source (it was made from a function"
                " defined outside a module file); pass encoding_to_net yourself"
            )
        base = (self.module_name or "encoding_to_net").replace(".", "_")
        digest = hashlib.sha256(self.module_source.encode()).hexdigest()[:10]
        module_name = f"nastune_bundled_{base}_{digest}"
        folder = Path(directory) if directory is not None else Path(tempfile.mkdtemp(prefix="nastune-module-"))
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{module_name}.py").write_text(self.module_source, encoding="utf-8")
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
        module = sys.modules.get(module_name) or importlib.import_module(module_name)
        fn: Any = module
        for part in self.function_name.split("."):
            fn = getattr(fn, part)
        if not callable(fn):
            raise BundleError(f"{self.function_name!r} in the bundled module is not callable")
        self.encoding_to_net = fn
        return fn


def _jsonable(obj: Any) -> Any:
    """``obj`` made JSON-safe (numpy scalars/arrays to lists, unknown objects to their repr)."""
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    return repr(obj)


def _profiled_subset(n: int, fraction: float | None, max_profiled: int | None, seed: int) -> np.ndarray:
    """Sorted ``(m,)`` indices to profile: all, or a seeded random subset."""
    target = n
    if fraction is not None:
        if not 0 < fraction <= 1:
            raise ProfilingError(f"fraction must be in (0, 1], got {fraction}")
        target = max(1, math.ceil(fraction * n))
    if max_profiled is not None:
        if max_profiled < 1:
            raise ProfilingError(f"max_profiled must be at least 1, got {max_profiled}")
        target = min(target, int(max_profiled))
    if target >= n:
        return np.arange(n, dtype=np.int64)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=target, replace=False)).astype(np.int64)


_METRIC_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")


def _check_metric_name(name: Any) -> str:
    if not isinstance(name, str) or not name or not set(name) <= _METRIC_NAME_CHARS or name == "index":
        raise ProfilingError(
            f"metric name {name!r} is not allowed; use letters, digits, '_', '-' or '.' (and not 'index')"
        )
    return name


def _check_pretraining_data(data: Mapping[str, Any], n: int) -> dict[str, np.ndarray]:
    """Validate user metrics: ``{name: (n,) numbers with NaN/None for unknown}`` -> float64 arrays."""
    if not isinstance(data, Mapping) or not data:
        raise ProfilingError("pretraining_data must be a non-empty dict {metric: one value per encoding}")
    out: dict[str, np.ndarray] = {}
    for name, values in data.items():
        _check_metric_name(name)
        try:
            arr = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ProfilingError(
                f"pretraining_data[{name!r}] must hold numbers (NaN or None where unknown): {exc}"
            ) from exc
        if arr.ndim != 1 or arr.shape[0] != n:
            got = arr.shape[0] if arr.ndim == 1 else f"shape {arr.shape}"
            raise ProfilingError(
                f"pretraining_data[{name!r}] has {got} values, expected {n}: one value per encoding,"
                " in the order of the encodings, NaN where unknown"
            )
        if np.isinf(arr).any():
            i = int(np.argmax(np.isinf(arr)))
            raise ProfilingError(f"pretraining_data[{name!r}][{i}] is infinite; use NaN for unknown values")
        if np.isnan(arr).all():
            raise ProfilingError(f"pretraining_data[{name!r}] is all NaN; give at least one known value")
        out[name] = arr
    return out


def _function_source(fn: Callable[..., Any]) -> tuple[str | None, str | None, str | None]:
    """(module source, module name, qualified function name) of ``fn`` when it lives in a module file."""
    module_name = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    if module_name is None or qualname is None or "<" in qualname:
        return None, module_name, qualname
    module = sys.modules.get(module_name)
    if module is None or getattr(module, "__file__", None) is None:
        return None, module_name, qualname
    try:
        source = inspect.getsource(module)
    except (OSError, TypeError):
        return None, module_name, qualname
    return source, module_name, qualname


def create_search_space(
    name: str,
    save_filename: str | Path,
    encodings: Sequence[Sequence[JSONScalar]] | np.ndarray,
    encoding_to_net: Callable[[Any], Any] | None = None,
    *,
    features: FeatureOverride | None = None,
    feature_spec: Sequence[Any] | Mapping[int, Any] | None = None,
    onehot_max: int = ONEHOT_MAX_DISTINCT,
    interactions: bool | str = False,
) -> SearchSpace:
    """Create a search space from encodings (validated) and an optional network builder.

    Args:
        name: a name for people.
        save_filename: path of the shareable bundle written by :meth:`SearchSpace.save` / ``preprocess``.
        encodings: ``n`` equal-length sequences of JSON scalars (int, float, str, bool), or an ``(n, L)``
            numeric / string array. Must be unique.
        encoding_to_net: ``encoding_to_net(encoding: tuple) -> torch.nn.Module``; ``None`` when
            metrics come from ``pretraining_data``.
        features: whole-matrix override: an ``(n, d)`` array, or a callable ``features(matrix) -> (n, d)``
            receiving :meth:`Encodings.matrix` ``(n, L)``.
        feature_spec: per-position override of the inferred feature kinds (see :func:`infer_feature_spec`).
        onehot_max: numeric positions with at most this many distinct values are one-hot encoded.
        interactions: pairwise products of the ordinal/numeric positions: ``False`` (default), ``True``, or
            ``"auto"`` (kept when they explain the pretraining metrics better); see
            :func:`nastune.features.infer_encoding_extras`. One-hot numeric positions with 3 or more values
            always get an ordinal column too.

    Raises:
        EncodingError: duplicates, ragged lengths, non-JSON values, an empty list, or bad features.
    """
    if not isinstance(name, str) or not name.strip():
        raise EncodingError("a search space needs a non-empty name")
    if encoding_to_net is not None and not callable(encoding_to_net):
        raise EncodingError(f"encoding_to_net must be callable, got {type(encoding_to_net).__name__}")
    table = validate_encodings(encodings)
    spec: list[dict[str, Any]] | None = None
    matrix: np.ndarray | None = None
    extras: dict[str, Any] | None = None
    if features is None:
        from nastune.features import infer_encoding_extras

        spec = infer_feature_spec(table, feature_spec, onehot_max=onehot_max)
        if isinstance(feature_spec, Mapping):
            fixed = {int(j) for j, v in feature_spec.items() if v is not None}
        else:
            fixed = {j for j, v in enumerate(feature_spec or []) if v is not None}
        try:
            extras = infer_encoding_extras(table, spec, interactions=interactions, fixed=fixed)
        except ValueError as exc:
            raise EncodingError(str(exc)) from exc
    else:
        if feature_spec is not None:
            raise EncodingError("give either features (whole matrix) or feature_spec (per position), not both")
        raw = features(table.matrix()) if callable(features) else features
        matrix = _check_feature_matrix(raw, len(table))
    source = module = function = None
    if encoding_to_net is not None:
        source, module, function = _function_source(encoding_to_net)
        if source is None:
            logger.warning(
                "encoding_to_net %r is not defined at module level in a .py file; the bundle will not carry"
                " its source, so whoever loads it must pass encoding_to_net themselves",
                getattr(encoding_to_net, "__qualname__", encoding_to_net),
            )
    space = SearchSpace(
        name,
        table,
        save_filename=save_filename,
        encoding_to_net=encoding_to_net,
        features=matrix,
        feature_spec=spec,
        module_source=source,
        module_name=module,
        function_name=function,
        encoding_extras=extras,
    )
    logger.info(
        "created search space %r: %d encodings of length %d, %d features",
        name, len(table), table.length, space.features.shape[1] if matrix is not None else
        sum(len(s["values"]) if s["kind"] == "onehot" else 1 for s in spec or [])
        + len((extras or {}).get("ordinal", [])) + len((extras or {}).get("interactions", [])),
    )
    return space


def read_search_results(path: str | Path) -> list[tuple[tuple, float]]:
    """The successful high-fidelity results ``[(encoding, value), ...]`` of a saved search state file.

    Raises:
        ProfilingError: the file is missing or is not a nastune search state.
    """
    p = Path(path)
    try:
        state = json.loads(p.read_text(encoding="utf-8"))
        history = state["history"]
    except FileNotFoundError as exc:
        raise ProfilingError(f"warm-start file {p} does not exist") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise ProfilingError(f"{p} is not a saved nastune search (a SearchInstance save_filename): {exc!r}") from exc
    out = []
    for e in history:
        if isinstance(e, Mapping) and e.get("fidelity") == "hi" and e.get("value") is not None:
            out.append((tuple(e["encoding"]), float(e["value"])))
    return out


def warm_started_space(space: SearchSpace, files: Sequence[str | Path], *, seed: int = 0) -> SearchSpace:
    """A copy of ``space`` whose surrogate is pretrained again with earlier searches' results as sparse targets.

    Each file's high-fidelity results become the pretraining target ``warm<k>`` (NaN where that search did not
    evaluate), next to the space's own metrics; the pretraining settings of the space are kept. The search that
    uses the copy then starts its objective head from a combination that includes what those searches saw.

    Args:
        space: a space with a profile (the original is not changed).
        files: saved search state files (``SearchInstance`` ``save_filename``) on the same encodings.
        seed: seed of the new pretraining.

    Raises:
        ProfilingError: a file is unreadable, holds no result, or none of its encodings are in the space.
    """
    if isinstance(files, str | Path):
        files = [files]
    warm = space._subset(np.arange(len(space), dtype=np.int64))
    warm.parent_indices = space.parent_indices
    warm.filter_report = space.filter_report
    for k, path in enumerate(files):
        results = read_search_results(path)
        if not results:
            raise ProfilingError(f"warm-start file {path} holds no successful high-fidelity result")
        idx = space.indices_of([enc for enc, _ in results])
        found = {int(i): v for i, (_, v) in zip(idx.tolist(), results, strict=True) if i >= 0}
        if not found:
            raise ProfilingError(f"none of the {len(results)} encodings of {path} is in search space {space.name!r}")
        if len(found) < len(results):
            logger.warning("warm start: %d of %d results of %s are not in this space; ignored",
                           len(results) - len(found), len(results), path)
        warm.add_results(f"warm{k}", found, maximize=None)  # the search's own warm-start order ranks them
    info = space.pretrain_info or {}
    options = dict(info.get("options") or {})
    warm.pretrain(seed=seed, simultaneous=bool(info.get("simultaneous", True)),
                  n_members=int(info.get("n_members", 5)), progress=False, **options)
    return warm


def load_search_space(path: str | Path) -> SearchSpace:
    """Open a bundle written by :meth:`SearchSpace.save`; verifies every checksum, never runs its code.

    Raises:
        BundleError: missing file, not a bundle, unknown format version, or a member that fails its checksum.
    """
    from nastune import bundle

    return bundle.read_space(path)


_validate_encodings = validate_encodings  # the name the web app first used
