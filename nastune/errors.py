"""Exceptions raised by nastune; every message says what is wrong and how to fix it."""

from __future__ import annotations


class NastuneError(Exception):
    """Base class of every error nastune raises on purpose."""


class EncodingError(NastuneError, ValueError):
    """The encodings of a search space (or one looked up in it) are not valid."""


class BundleError(NastuneError):
    """A search-space bundle file cannot be read: missing, corrupt, tampered or of an unknown version."""


class ProfilingError(NastuneError):
    """Profiling cannot start or its inputs are inconsistent (one failing encoding is not an error)."""


class SearchError(NastuneError):
    """A search cannot proceed (bad options, exhausted space, inconsistent saved state)."""
