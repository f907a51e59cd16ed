"""Where a search's configuration and evaluations live: the storage contract and its JSON-file implementation.

:class:`~nastune.search.SearchInstance` never keeps its own copy of the history: every read goes to
its storage and every change is written through it, so a library search (a JSON file) and a web search
(database rows, ``searches.storage`` in the service) share one source of truth each.

Records are plain dicts. A *pending* record (proposed, not finished) has ``index``, ``encoding``,
``fidelity``, ``ask`` (the ask number that proposed it), ``asked_at``, ``predicted_mean``,
``predicted_std`` and ``reason``. A *finished* record adds ``value`` (``None`` when it failed), ``error``,
``cost`` (in the user's cost unit), ``budget_units`` (in high-fidelity evaluations), ``duration_s`` and
``finished_at``. An implementation may add keys of its own (the web adds the row ``id``).
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from nastune.errors import SearchError

__all__ = ["InMemoryStorage", "JSONFileStorage", "SearchStorage", "atomic_write_json", "best_record"]

STATE_FORMAT = "nastune.SearchInstance"
STATE_VERSION = 1


def atomic_write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as JSON to ``path`` atomically: temp file in the same folder, fsync, ``os.replace``."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(obj, fh, separators=(",", ":"), allow_nan=False)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable (not possible on every OS)
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def best_record(records: Sequence[Mapping[str, Any]], fidelity: str = "hi") -> Mapping[str, Any] | None:
    """The successful record of ``fidelity`` with the highest value (the first one on ties), or ``None``."""
    best: Mapping[str, Any] | None = None
    for record in records:
        value = record.get("value")
        if record.get("fidelity") == fidelity and value is not None and (best is None or value > best["value"]):
            best = record
    return best


class SearchStorage(ABC):
    """The contract between a search and where its evaluations are kept.

    A search calls :meth:`load_config` once; :meth:`save_config` when it starts and when its
    configuration or ask counter changes; :meth:`create_pending` when it proposes evaluations;
    :meth:`finish` (or :meth:`fail`) when one ends; :meth:`withdraw` for a proposal that will not run.
    :meth:`history` and :meth:`pending` are the only views of the evaluations; :meth:`incumbent` and
    :meth:`spent` are derived from them and may be overridden by a storage that keeps them indexed.
    """

    @abstractmethod
    def load_config(self) -> dict[str, Any] | None:
        """The stored configuration (``seed``, costs, ``budget``, ``options``, ``n_asks``, ...), ``None`` if new."""

    @abstractmethod
    def save_config(self, config: Mapping[str, Any]) -> None:
        """Store the configuration (everything but the evaluations)."""

    @abstractmethod
    def history(self) -> list[dict[str, Any]]:
        """Every finished evaluation, successful or failed, in the order they finished."""

    @abstractmethod
    def pending(self) -> list[dict[str, Any]]:
        """Evaluations proposed and not finished yet, in the order they were proposed."""

    @abstractmethod
    def create_pending(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Record new proposals."""

    @abstractmethod
    def finish(self, record: Mapping[str, Any]) -> None:
        """Record a finished evaluation; its pending record (same ``index`` and ``fidelity``) is removed and
        what the record leaves out (``ask``, ``reason``, predictions) is kept from it."""

    @abstractmethod
    def withdraw(self, index: int, fidelity: str) -> bool:
        """Forget a pending evaluation that will never finish; whether there was one."""

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Group several writes into one (a search's ask records its proposals and its ask counter together,
        so a process killed in between cannot keep one without the other). Default: writes as they come."""
        yield

    def fail(self, record: Mapping[str, Any], error: str) -> None:
        """Record a failed evaluation (``value`` ``None``, ``error`` set)."""
        self.finish({**record, "value": None, "error": error})

    def incumbent(self, fidelity: str = "hi") -> dict[str, Any] | None:
        """The best successful finished evaluation at ``fidelity``."""
        best = best_record(self.history(), fidelity)
        return None if best is None else dict(best)

    def spent(self) -> float:
        """Budget units (high-fidelity evaluations) spent by finished evaluations, failed ones included."""
        return float(sum(float(r["budget_units"]) for r in self.history()))


class InMemoryStorage(SearchStorage):
    """A search kept in memory (what a JSON file holds, without the file)."""

    def __init__(self, state: Mapping[str, Any] | None = None) -> None:
        self._config: dict[str, Any] | None = None
        self._history: list[dict[str, Any]] = []
        self._pending: list[dict[str, Any]] = []
        self._batch_depth = 0
        self._dirty = False
        if state is not None:
            self._restore(state)

    def _restore(self, state: Mapping[str, Any]) -> None:
        if state.get("format") != STATE_FORMAT:
            raise SearchError(f"not a nastune search state (format {state.get('format')!r})")
        if int(state.get("version", -1)) != STATE_VERSION:
            raise SearchError(
                f"search state version {state.get('version')!r}; this nastune reads version {STATE_VERSION}"
            )
        try:
            self._history = [dict(r) for r in state["history"]]
            self._pending = [dict(r) for r in state["pending"]]
        except (KeyError, TypeError) as exc:
            raise SearchError(f"malformed search state: {exc!r}") from exc
        self._config = {k: copy.deepcopy(v) for k, v in state.items() if k not in ("history", "pending")}

    def to_state(self) -> dict[str, Any]:
        """Configuration and evaluations as one JSON-serialisable dict (the JSON file's content)."""
        return {
            **copy.deepcopy(self._config or {}),
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "history": [dict(r) for r in self._history],
            "pending": [dict(r) for r in self._pending],
        }

    def _changed(self) -> None:
        if self._batch_depth:
            self._dirty = True
        else:
            self._persist()

    def _persist(self) -> None:
        """Hook: persist after every change (or once at the end of a :meth:`batch`)."""

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        self._batch_depth += 1
        try:
            yield
        finally:
            self._batch_depth -= 1
            if self._batch_depth == 0 and self._dirty:
                self._dirty = False
                self._persist()

    def load_config(self) -> dict[str, Any] | None:
        return copy.deepcopy(self._config)

    def save_config(self, config: Mapping[str, Any]) -> None:
        self._config = copy.deepcopy(dict(config))
        self._changed()

    def history(self) -> list[dict[str, Any]]:
        return self._history

    def pending(self) -> list[dict[str, Any]]:
        return self._pending

    def create_pending(self, records: Sequence[Mapping[str, Any]]) -> None:
        self._pending.extend(dict(r) for r in records)
        self._changed()

    def finish(self, record: Mapping[str, Any]) -> None:
        match = next((p for p in self._pending
                      if p["index"] == record["index"] and p["fidelity"] == record["fidelity"]), None)
        finished = dict(record)
        if match is not None:
            self._pending.remove(match)
            finished = {**match, **{k: v for k, v in record.items() if v is not None or k in ("value", "error")}}
        self._history.append(finished)
        self._changed()

    def withdraw(self, index: int, fidelity: str) -> bool:
        match = next((p for p in self._pending if p["index"] == int(index) and p["fidelity"] == fidelity), None)
        if match is None:
            return False
        self._pending.remove(match)
        self._changed()
        return True


class JSONFileStorage(InMemoryStorage):
    """A search in one JSON file, rewritten atomically after every change (a killed process loses at most
    the evaluations in flight)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        state = None
        if self.path.exists():
            try:
                with self.path.open(encoding="utf-8") as fh:
                    state = json.load(fh)
            except (OSError, json.JSONDecodeError) as exc:
                raise SearchError(f"cannot read search state {self.path}: {exc}") from exc
        super().__init__(state)

    def _persist(self) -> None:
        if self._config is not None:
            atomic_write_json(self.path, self.to_state())
