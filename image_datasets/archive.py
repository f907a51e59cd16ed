"""Bounded reading of uploaded dataset archives: list and unpack zip/tar members without trusting them.

Every member name is checked (no absolute path, no ``..``, no link, device or FIFO), the member count and
the total unpacked size are bounded before anything is written, and unpacking stops as soon as the bytes
actually written exceed what the archive declared (a lying header cannot fill the disk).
"""

from __future__ import annotations

import posixpath
import stat
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from nasweb.errors import DomainError

PARQUET_MAGIC = b"PAR1"
# Files archivers add that are not part of the data; skipped instead of refused.
JUNK_PARTS = ("__MACOSX",)
JUNK_NAMES = (".DS_Store", "Thumbs.db", "desktop.ini")
COPY_CHUNK = 1 << 20


class DatasetArchiveError(DomainError):
    """The uploaded archive cannot be used; ``field`` is the upload's field, the reason says what to fix."""


@dataclass(frozen=True)
class Member:
    """One regular file of an archive: its checked relative path and declared unpacked size."""

    name: str
    size: int


def archive_kind(path: Path, *, field: str = "archive") -> str:
    """``"zip"``, ``"tar"`` (plain, gzip, bzip2 or xz) or ``"parquet"`` from the file's content, not its name."""
    with path.open("rb") as handle:
        head = handle.read(8)
    if head[:4] == PARQUET_MAGIC:
        return "parquet"
    if zipfile.is_zipfile(path):
        return "zip"
    try:
        if tarfile.is_tarfile(path):
            return "tar"
    except (OSError, EOFError, tarfile.TarError):
        pass
    raise DatasetArchiveError(field, "not an archive: upload a .zip or .tar(.gz) of class folders (class_name/*.png), "
                                     "of a datasets save_to_disk folder or of parquet files, or one .parquet file")


def _checked_name(raw: str, field: str) -> str | None:
    """The member's relative POSIX path, ``None`` for archiver junk, or an error for an unsafe name."""
    name = raw.replace("\\", "/")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise DatasetArchiveError(field, f"member {raw!r} has an absolute path; archive relative paths only")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise DatasetArchiveError(field, f"member {raw!r} leaves the archive's folder ('..'); archive relative "
                                         "paths only")
    if not parts or any(part in JUNK_PARTS for part in parts) or parts[-1] in JUNK_NAMES:
        return None
    if len(name) > 1000 or any(ord(ch) < 32 for ch in name):
        raise DatasetArchiveError(field, f"member {raw[:80]!r} has an unusable name")
    return posixpath.join(*parts)


class _Bounds:
    """Counts members and declared bytes, refusing the archive when either passes its limit."""

    def __init__(self, field: str, max_files: int, max_bytes: int) -> None:
        self.field, self.max_files, self.max_bytes = field, max_files, max_bytes
        self.files = 0
        self.bytes = 0

    def add(self, size: int) -> None:
        self.files += 1
        self.bytes += size
        if self.files > self.max_files:
            raise DatasetArchiveError(self.field, f"the archive holds more than {self.max_files:,} files "
                                                  "(NASWEB_DATASET_MAX_FILES)")
        if self.bytes > self.max_bytes:
            raise DatasetArchiveError(self.field, f"the archive unpacks to more than {self.max_bytes / 2**20:,.0f} MB "
                                                  "(NASWEB_DATASET_MAX_MB)")


def _zip_members(archive: zipfile.ZipFile, field: str, bounds: _Bounds) -> Iterator[tuple[Member, zipfile.ZipInfo]]:
    for info in archive.infolist():
        mode = info.external_attr >> 16
        if mode and stat.S_ISLNK(mode):
            raise DatasetArchiveError(field, f"member {info.filename!r} is a link; archive plain files only")
        if info.is_dir():
            _checked_name(info.filename, field)
            continue
        if info.flag_bits & 0x1:
            raise DatasetArchiveError(field, f"member {info.filename!r} is encrypted; archive it without a password")
        name = _checked_name(info.filename, field)
        if name is None:
            continue
        bounds.add(info.file_size)
        yield Member(name, info.file_size), info


def _tar_members(archive: tarfile.TarFile, field: str, bounds: _Bounds) -> Iterator[tuple[Member, tarfile.TarInfo]]:
    for info in archive:  # streams through the archive: the bounds stop a bomb before its end
        if info.issym() or info.islnk():
            raise DatasetArchiveError(field, f"member {info.name!r} is a link; archive plain files only")
        if info.isdir():
            _checked_name(info.name, field)
            continue
        if not info.isreg():
            raise DatasetArchiveError(field, f"member {info.name!r} is not a plain file (device, FIFO or other); "
                                             "archive plain files only")
        name = _checked_name(info.name, field)
        if name is None:
            continue
        bounds.add(info.size)
        yield Member(name, info.size), info


def list_members(path: Path, *, max_files: int, max_bytes: int, field: str = "archive") -> list[Member]:
    """The archive's files, checked and bounded, without unpacking any (reads only headers of a zip)."""
    kind = archive_kind(path, field=field)
    if kind == "parquet":
        size = path.stat().st_size
        _Bounds(field, max_files, max_bytes).add(size)
        return [Member("data.parquet", size)]
    bounds = _Bounds(field, max_files, max_bytes)
    try:
        if kind == "zip":
            with zipfile.ZipFile(path) as archive:
                members = [member for member, _ in _zip_members(archive, field, bounds)]
        else:
            with tarfile.open(path, "r:*") as archive:
                members = [member for member, _ in _tar_members(archive, field, bounds)]
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
        raise DatasetArchiveError(field, f"the archive is damaged: {exc}") from None
    names = [member.name for member in members]
    if len(set(names)) != len(names):
        raise DatasetArchiveError(field, "the archive holds the same path twice")
    if not members:
        raise DatasetArchiveError(field, "the archive holds no files")
    return members


def _copy_bounded(source: IO[bytes], target: Path, declared: int, name: str, field: str) -> None:
    written = 0
    with target.open("xb") as out:
        while chunk := source.read(COPY_CHUNK):
            written += len(chunk)
            if written > declared:
                raise DatasetArchiveError(field, f"member {name!r} unpacks to more than its declared {declared:,} "
                                                 "bytes; the archive is damaged or forged")
            out.write(chunk)


def _target(root: Path, name: str) -> Path:
    target = root.joinpath(*name.split("/"))
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


def unpack(path: Path, into: Path, *, max_files: int, max_bytes: int, field: str = "archive") -> list[Member]:
    """Unpack the archive's checked files into the empty folder ``into``; the same bounds as :func:`list_members`."""
    kind = archive_kind(path, field=field)
    into.mkdir(parents=True, exist_ok=True)
    if kind == "parquet":
        members = list_members(path, max_files=max_files, max_bytes=max_bytes, field=field)
        with path.open("rb") as source:
            _copy_bounded(source, into / members[0].name, members[0].size, members[0].name, field)
        return members
    list_members(path, max_files=max_files, max_bytes=max_bytes, field=field)  # refuse before writing anything
    bounds = _Bounds(field, max_files, max_bytes)
    members = []
    try:
        if kind == "zip":
            with zipfile.ZipFile(path) as zip_archive:
                for member, zip_info in _zip_members(zip_archive, field, bounds):
                    with zip_archive.open(zip_info) as source:
                        _copy_bounded(source, _target(into, member.name), member.size, member.name, field)
                    members.append(member)
        else:
            with tarfile.open(path, "r:*") as tar_archive:
                for member, tar_info in _tar_members(tar_archive, field, bounds):
                    source_file = tar_archive.extractfile(tar_info)
                    if source_file is None:
                        raise DatasetArchiveError(field, f"member {member.name!r} cannot be read")
                    with source_file:
                        _copy_bounded(source_file, _target(into, member.name), member.size, member.name, field)
                    members.append(member)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
        raise DatasetArchiveError(field, f"the archive is damaged: {exc}") from None
    return members
