"""A small per-process cache of things parsed from files, keyed by path and modification time.

Workers and web processes re-read the same bundle, encodings or table on every task or request;
parsing once per file version keeps that cheap, and a rewritten file is picked up at once.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

T = TypeVar("T")


class FileCache(Generic[T]):
    """``cache.get(path, load)`` returns ``load(path)``, computed once per (path, mtime)."""

    def __init__(self, size: int = 4) -> None:
        self._size = size
        self._entries: OrderedDict[tuple[str, float], T] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path: str | Path, load: Callable[[Path], T]) -> T:
        path = Path(path)
        key = (str(path), path.stat().st_mtime)
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
        value = load(path)
        with self._lock:
            self._entries[key] = value
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return value
