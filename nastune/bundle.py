"""The shareable search-space bundle: a zip of JSON, CSV, Python source and safetensors, checksummed, no pickle.

Layout (``FORMAT_VERSION`` 1)::

    manifest.json          format, format_version, name, created, written, sha256 + size of every other member
    space.json             name, feature spec, position kinds, metric order, encoding_to_net module/function,
                           filter report, pretraining settings
    encodings.json         the encodings, column by column ({"n", "length", "columns": [{"kind", "values"}]})
    features.safetensors   only when the caller gave custom features (else recomputed from the feature spec,
                           the encoding extras and the architecture features)
    architecture.safetensors  raw architecture features read from the networks (nastune.features), when
                           extracted; space.json has the columns in use and their standardisation
    encoding_to_net.py     source of encoding_to_net's module, when it came from a file (never run on load)
    profile.csv            index,<metric>,...  one row per encoding, "nan" where unknown
    failures.json          {"<index>": "error message"} of encodings whose profiling failed
    surrogate.json         DeepEnsemble.config() (only when pretrained)
    surrogate.safetensors  DeepEnsemble.state_dict()

Opening a bundle never executes code: JSON, CSV and safetensors are parsed, the module source is kept as
text. A member whose bytes do not match the manifest's sha256 raises :class:`BundleError` naming it.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
import secrets
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nastune.errors import BundleError, EncodingError
from nastune.profile_csv import read_profile_csv, write_profile_csv

if TYPE_CHECKING:
    from nastune.space import SearchSpace

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "read_bundle",
    "read_manifest",
    "read_space",
    "space_members",
    "write_bundle",
]

logger = logging.getLogger("nastune")

FORMAT = "nastune-search-space"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
#: Refuse members larger than this (a zip bomb guard for uploaded bundles); 8 GiB.
MAX_MEMBER_BYTES = 8 * 2**30

_KNOWN_MEMBERS = {
    "space.json",
    "encodings.json",
    "features.safetensors",
    "architecture.safetensors",
    "encoding_to_net.py",
    "profile.csv",
    "failures.json",
    "surrogate.json",
    "surrogate.safetensors",
}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_bundle(
    path: str | Path,
    members: Mapping[str, bytes],
    *,
    name: str,
    created: str | None = None,
    format: str = FORMAT,
) -> Path:
    """Write ``members`` and their manifest to ``path`` atomically (temp file in the same folder + ``os.replace``).

    Args:
        path: target file; its folder must exist.
        members: member name -> bytes (flat names, no folders).
        name: recorded in the manifest.
        created: ISO timestamp of the space's creation (default: now).
        format: format tag recorded in the manifest.

    Returns:
        The path written.
    """
    target = Path(path)
    if not target.parent.exists():
        raise BundleError(f"cannot write {target}: folder {target.parent} does not exist")
    now = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    for member in members:
        if member == MANIFEST or "/" in member or "\\" in member or member.startswith("."):
            raise BundleError(f"invalid bundle member name {member!r}")
    manifest = {
        "format": format,
        "format_version": FORMAT_VERSION,
        "name": name,
        "created": created or now,
        "written": now,
        "members": {m: {"sha256": _sha256(data), "bytes": len(data)} for m, data in sorted(members.items())},
    }
    # a plain exclusive open (not mkstemp) so the bundle gets the usual umask permissions, not 0600
    tmp_name = str(target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp"))
    try:
        with open(tmp_name, "xb") as raw, zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(MANIFEST, json.dumps(manifest, indent=2, sort_keys=True))
            for member, data in sorted(members.items()):
                zf.writestr(member, data)
        with open(tmp_name, "rb") as written:
            os.fsync(written.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return target


def _open_zip(path: Path) -> zipfile.ZipFile:
    if not path.exists():
        raise BundleError(f"bundle {path} does not exist")
    try:
        return zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise BundleError(f"{path} is not a nastune bundle (not a zip file: {exc})") from exc


def _check_manifest(path: Path, zf: zipfile.ZipFile) -> dict[str, Any]:
    try:
        manifest = json.loads(zf.read(MANIFEST))
    except KeyError as exc:
        raise BundleError(f"{path} is not a nastune bundle: it has no {MANIFEST}") from exc
    except (ValueError, zipfile.BadZipFile) as exc:
        raise BundleError(f"member {MANIFEST!r} of {path} is corrupt: {exc}") from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("members"), dict):
        raise BundleError(f"member {MANIFEST!r} of {path} is malformed (no members table)")
    version = manifest.get("format_version")
    if manifest.get("format") != FORMAT and manifest.get("format") is not None:
        raise BundleError(f"{path} is a {manifest.get('format')!r} file, not a {FORMAT!r} bundle")
    if not isinstance(version, int):
        raise BundleError(f"member {MANIFEST!r} of {path} has no integer format_version")
    if version > FORMAT_VERSION:
        raise BundleError(
            f"{path} has bundle format version {version}, newer than this nastune reads ({FORMAT_VERSION});"
            " upgrade nastune"
        )
    if version < 1:
        raise BundleError(f"{path} has unknown bundle format version {version}")
    return manifest


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The manifest of a bundle (format checked, member checksums not verified; for display)."""
    p = Path(path)
    with _open_zip(p) as zf:
        return _check_manifest(p, zf)


def read_bundle(
    path: str | Path, *, max_member_bytes: int = MAX_MEMBER_BYTES
) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Read and verify a bundle.

    Returns:
        ``(manifest, members)``: the manifest dict and member name -> bytes, every member verified.

    Raises:
        BundleError: not a zip, no/malformed manifest, unknown format version, a member missing, unlisted,
            too large or failing its sha256 checksum (the message names the member).
    """
    p = Path(path)
    with _open_zip(p) as zf:
        manifest = _check_manifest(p, zf)
        listed: dict[str, Any] = manifest["members"]
        infos = {info.filename: info for info in zf.infolist()}
        for member in infos:
            if member != MANIFEST and member not in listed:
                raise BundleError(f"bundle {p} has member {member!r}, which its manifest does not list")
        members: dict[str, bytes] = {}
        for member, entry in listed.items():
            info = infos.get(member)
            if info is None:
                raise BundleError(f"bundle {p} lacks member {member!r} listed in its manifest")
            if not isinstance(entry, dict) or "sha256" not in entry:
                raise BundleError(f"manifest entry of member {member!r} in {p} has no sha256")
            if info.file_size > max_member_bytes or info.file_size != entry.get("bytes", info.file_size):
                raise BundleError(
                    f"bundle member {member!r} of {p} has {info.file_size} bytes, expected {entry.get('bytes')}"
                    " (tampered or corrupt)"
                )
            try:
                data = zf.read(member)
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                raise BundleError(f"bundle member {member!r} of {p} is corrupt: {exc}") from exc
            if _sha256(data) != entry["sha256"]:
                raise BundleError(
                    f"bundle member {member!r} of {p} fails its sha256 checksum: it was modified after the"
                    " bundle was written (tampered or corrupt); get the bundle again from its source"
                )
            members[member] = data
    return manifest, members


# --------------------------------------------------------------------------------------------------
# SearchSpace <-> members
# --------------------------------------------------------------------------------------------------


def _profile_csv(space: SearchSpace) -> bytes:
    return write_profile_csv(space.profile, len(space))


def _read_profile_csv(data: bytes, n: int) -> dict[str, np.ndarray]:
    try:
        return read_profile_csv(data, n)[0]
    except BundleError as exc:
        raise BundleError(f"bundle member 'profile.csv': {exc}") from exc


def space_members(space: SearchSpace) -> dict[str, bytes]:
    """Serialise a search space into bundle members (see the module docstring)."""
    from nastune.space import _jsonable

    info = {
        "name": space.name,
        "created": space.created,
        "n_encodings": len(space),
        "encoding_length": space.encodings.length,
        "kinds": list(space.encodings.kinds),
        "feature_spec": space.feature_spec,
        "n_features": int(space.features.shape[1]),
        "metrics": list(space.profile),
        "encoding_to_net": (
            {"module": space.module_name, "function": space.function_name}
            if space.function_name is not None
            else None
        ),
        "filter_report": _jsonable(space.filter_report),
        "pretrain": _jsonable(space.pretrain_info),
        "encoding_extras": _jsonable(space.encoding_extras),
        "architecture": _jsonable(space.architecture_stats) if space.architecture_raw is not None else None,
        "transfers": {name: [int(i) for i in ranking] for name, ranking in space.transfers.items()},
    }
    members: dict[str, bytes] = {
        "space.json": json.dumps(info, indent=2, allow_nan=False).encode(),
        "encodings.json": json.dumps(space.encodings.to_json_obj(), separators=(",", ":"), allow_nan=False).encode(),
        "profile.csv": _profile_csv(space),
        "failures.json": json.dumps({str(k): v for k, v in sorted(space.failures.items())}, indent=1).encode(),
    }
    if space.feature_spec is None:
        from safetensors.numpy import save as save_numpy

        members["features.safetensors"] = save_numpy({"features": np.ascontiguousarray(space.features)})
    if space.architecture_raw is not None:
        from safetensors.numpy import save as save_arch

        members["architecture.safetensors"] = save_arch(
            {"architecture": np.ascontiguousarray(space.architecture_raw, dtype=np.float64)}
        )
    if space.module_source is not None:
        members["encoding_to_net.py"] = space.module_source.encode()
    if space.surrogate is not None:
        from safetensors.torch import save as save_torch

        tensors = {k: v.detach().cpu().contiguous() for k, v in space.surrogate.state_dict().items()}
        members["surrogate.safetensors"] = save_torch(tensors)
        members["surrogate.json"] = json.dumps(_jsonable(space.surrogate.config()), indent=2).encode()
    return members


def _json_member(members: Mapping[str, bytes], member: str) -> Any:
    try:
        return json.loads(members[member])
    except KeyError as exc:
        raise BundleError(f"bundle lacks member {member!r}") from exc
    except ValueError as exc:
        raise BundleError(f"bundle member {member!r} is not valid JSON: {exc}") from exc


def read_space(path: str | Path) -> SearchSpace:
    """Rebuild a :class:`~nastune.space.SearchSpace` from a verified bundle (runs no code from it)."""
    from nastune.space import Encodings, SearchSpace

    p = Path(path)
    _manifest, members = read_bundle(p)
    for member in members:
        if member not in _KNOWN_MEMBERS:
            logger.warning("bundle %s has unknown member %r; ignored", p, member)
    info = _json_member(members, "space.json")
    try:
        encodings = Encodings.from_json_obj(_json_member(members, "encodings.json"))
    except EncodingError as exc:
        raise BundleError(f"bundle member 'encodings.json' is invalid: {exc}") from exc
    n = len(encodings)
    if info.get("n_encodings") != n or list(info.get("kinds", [])) != list(encodings.kinds):
        raise BundleError("bundle member 'space.json' does not match 'encodings.json' (count or position kinds)")
    features = None
    if "features.safetensors" in members:
        from safetensors.numpy import load as load_numpy

        try:
            features = load_numpy(members["features.safetensors"])["features"]
        except Exception as exc:  # safetensors raises its own error types
            raise BundleError(f"bundle member 'features.safetensors' is unreadable: {exc}") from exc
        if features.ndim != 2 or features.shape[0] != n:
            raise BundleError(f"bundle member 'features.safetensors' has shape {features.shape}, expected ({n}, d)")
    elif info.get("feature_spec") is None:
        raise BundleError("bundle has neither a feature spec in 'space.json' nor 'features.safetensors'")
    architecture_raw = None
    if "architecture.safetensors" in members and info.get("architecture") is not None:
        from safetensors.numpy import load as load_arch

        from nastune.features import ARCH_FEATURE_NAMES, EARLIER_ARCH_WIDTHS

        try:
            architecture_raw = load_arch(members["architecture.safetensors"])["architecture"]
        except Exception as exc:  # safetensors raises its own error types
            raise BundleError(f"bundle member 'architecture.safetensors' is unreadable: {exc}") from exc
        width = len(ARCH_FEATURE_NAMES)
        if architecture_raw.ndim == 2 and architecture_raw.shape[0] == n and architecture_raw.shape[1] in (
                EARLIER_ARCH_WIDTHS):  # an older release's features: the columns added since are unknown
            architecture_raw = np.pad(architecture_raw.astype(np.float64),
                                      ((0, 0), (0, width - architecture_raw.shape[1])), constant_values=np.nan)
        if architecture_raw.shape != (n, width):
            raise BundleError(
                f"bundle member 'architecture.safetensors' has shape {architecture_raw.shape}, expected"
                f" ({n}, {len(ARCH_FEATURE_NAMES)})"
            )
    profile = _read_profile_csv(members["profile.csv"], n) if "profile.csv" in members else {}
    failures_obj = _json_member(members, "failures.json") if "failures.json" in members else {}
    try:
        failures = {int(k): str(v) for k, v in failures_obj.items()}
    except (AttributeError, ValueError) as exc:
        raise BundleError(f"bundle member 'failures.json' is malformed: {exc}") from exc
    surrogate = None
    if "surrogate.safetensors" in members:
        from safetensors.torch import load as load_torch

        from nastune.surrogate import DeepEnsemble

        config = _json_member(members, "surrogate.json")
        try:
            tensors = load_torch(members["surrogate.safetensors"])
        except Exception as exc:  # safetensors raises its own error types
            raise BundleError(f"bundle member 'surrogate.safetensors' is unreadable: {exc}") from exc
        surrogate = DeepEnsemble.from_state(config, tensors)
    e2n = info.get("encoding_to_net") or {}
    source = members["encoding_to_net.py"].decode() if "encoding_to_net.py" in members else None
    space = SearchSpace(
        str(info.get("name", p.stem)),
        encodings,
        save_filename=p,
        features=features,
        feature_spec=info.get("feature_spec") if features is None else None,
        profile=profile,
        failures=failures,
        surrogate=surrogate,
        module_source=source,
        module_name=e2n.get("module"),
        function_name=e2n.get("function"),
        created=info.get("created"),
        encoding_extras=info.get("encoding_extras") if features is None else None,
        architecture_raw=architecture_raw if features is None else None,
        architecture_stats=info.get("architecture") if architecture_raw is not None else None,
    )
    space.filter_report = info.get("filter_report")
    space.pretrain_info = info.get("pretrain")
    transfers = info.get("transfers") or {}
    if not isinstance(transfers, dict) or not all(
            isinstance(ranking, list) and all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < n
                                              for i in ranking) for ranking in transfers.values()):
        raise BundleError("bundle member 'space.json' has malformed 'transfers' (name -> list of encoding indices)")
    space.transfers = {str(name): list(ranking) for name, ranking in transfers.items()}
    return space
