"""Bounded checks of an uploaded bundle before anything is unpacked: members, total size, checksums streamed."""

from __future__ import annotations

import hashlib
import json
import zipfile
import zlib
from pathlib import Path

from nasweb import safe_json
from nasweb.errors import DomainError

MANIFEST = "manifest.json"
#: a bundle has about six members; more is not a bundle
MAX_MEMBERS = 32
MAX_MANIFEST_BYTES = 1 << 20
CHUNK_BYTES = 1 << 20


class BundleRefused(DomainError):
    """The uploaded bundle is refused; the reason never names a server path."""

    def __init__(self, reason: str) -> None:
        super().__init__("bundle", reason)


def verify_archive(path: Path, *, max_bytes: int) -> None:
    """Check the zip at ``path`` without unpacking more than one chunk at a time.

    The declared (uncompressed) sizes of all members together must stay within ``max_bytes`` before
    anything is read; :mod:`zipfile` never inflates a member past its declared size (it stops there
    and fails the member's CRC), so reading is bounded by what was checked. Every member the manifest
    lists is then streamed through sha256 and compared with the manifest.

    Raises:
        BundleRefused: not a zip, too many members, too large once unpacked, no or malformed manifest,
            a listed member missing or unlisted, corrupt, or failing its checksum.
    """
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        raise BundleRefused("the file is not a NASWeb bundle (not a zip file)") from None
    with archive:
        infos = {info.filename: info for info in archive.infolist()}
        if len(infos) > MAX_MEMBERS:
            raise BundleRefused(f"the bundle has {len(infos)} members; a NASWeb bundle has at most {MAX_MEMBERS}")
        total = sum(info.file_size for info in infos.values())
        if total > max_bytes:
            raise BundleRefused(
                f"the bundle unpacks to {total / 2**20:,.0f} MB, more than the limit of {max_bytes / 2**20:,.0f} MB "
                "(NASWEB_MAX_BUNDLE_MB)")
        manifest_info = infos.get(MANIFEST)
        if manifest_info is None:
            raise BundleRefused(f"the file is not a NASWeb bundle: it has no {MANIFEST}")
        if manifest_info.file_size > MAX_MANIFEST_BYTES:
            raise BundleRefused(f"{MANIFEST} is larger than {MAX_MANIFEST_BYTES // 1024} KB")
        try:
            manifest = safe_json.loads(_read(archive, manifest_info))
        except (json.JSONDecodeError, safe_json.JSONInputError, UnicodeDecodeError) as exc:
            raise BundleRefused(f"{MANIFEST} is not valid JSON: {exc}") from None
        listed = manifest.get("members") if isinstance(manifest, dict) else None
        if not isinstance(listed, dict):
            raise BundleRefused(f"{MANIFEST} is malformed (no members table)")
        for name in infos:
            if name != MANIFEST and name not in listed:
                raise BundleRefused(f"the bundle has member {name!r}, which its manifest does not list")
        for name, entry in listed.items():
            info = infos.get(name)
            if info is None:
                raise BundleRefused(f"the bundle lacks member {name!r} listed in its manifest")
            if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
                raise BundleRefused(f"the manifest entry of member {name!r} has no sha256")
            if _sha256(archive, info) != entry["sha256"]:
                raise BundleRefused(
                    f"bundle member {name!r} fails its sha256 checksum: it was modified after the bundle was "
                    "written (tampered or corrupt); get the bundle again from its source")


def _read(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    try:
        return archive.read(info)
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error, NotImplementedError):
        raise BundleRefused(f"bundle member {info.filename!r} is corrupt") from None


def _sha256(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> str:
    digest = hashlib.sha256()
    try:
        with archive.open(info) as member:
            while chunk := member.read(CHUNK_BYTES):
                digest.update(chunk)
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error, NotImplementedError):
        # a member longer than it declares ends at its declared size and fails its CRC here
        raise BundleRefused(f"bundle member {info.filename!r} is corrupt") from None
    return digest.hexdigest()


def without_paths(message: str, path: Path, shown_name: str) -> str:
    """``message`` with the server's temporary ``path`` (and its folder) replaced by the user's file name."""
    return message.replace(str(path), shown_name).replace(str(path.parent), "the upload")
