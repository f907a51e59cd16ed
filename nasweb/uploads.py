"""Reading an uploaded file: the size limit and UTF-8 rule, the same for every form and API call."""

from __future__ import annotations

from typing import Literal, Protocol, overload

from django.conf import settings

from nasweb.errors import DomainError

# A UTF-8 character is at most 4 bytes: a module file over this many bytes cannot be within the character limit.
BYTES_PER_CHAR = 4


class UploadError(DomainError):
    """An uploaded file is refused (too large, not text); ``field`` names the file input."""


class Upload(Protocol):
    """What is read of an uploaded file (Django's ``UploadedFile`` has it)."""

    size: int | None

    def read(self, size: int = -1) -> bytes: ...


def check_upload_size(upload: Upload, *, field: str, max_mb: float | None = None) -> None:
    """Refuse a file over ``max_mb`` (default ``NASWEB_MAX_UPLOAD_MB``) before anything of it is read."""
    limit_mb = settings.NASWEB_MAX_UPLOAD_MB if max_mb is None else max_mb
    if upload.size is not None and upload.size > limit_mb * 2**20:
        raise UploadError(field, f"the file is {upload.size / 2**20:.1f} MB, over the limit of {limit_mb:g} MB "
                                 "(NASWEB_MAX_UPLOAD_MB)")


def _decode(data: bytes, field: str, hint: str) -> str:
    try:
        return data.decode("utf-8-sig")  # tolerate the byte-order mark some editors on Windows write
    except UnicodeDecodeError:
        raise UploadError(field, f"the file is not UTF-8 text{hint}") from None


@overload
def read_upload(upload: Upload, *, field: str, max_mb: float | None = ..., text: Literal[True] = ...,
                hint: str = ...) -> str: ...
@overload
def read_upload(upload: Upload, *, field: str, max_mb: float | None = ..., text: Literal[False],
                hint: str = ...) -> bytes: ...
def read_upload(upload: Upload, *, field: str, max_mb: float | None = None, text: bool = True,
                hint: str = "") -> str | bytes:
    """The file's content: text (UTF-8, a BOM dropped) or bytes. ``hint`` ends the not-UTF-8 reason
    (e.g. "; upload JSON or CSV")."""
    check_upload_size(upload, field=field, max_mb=max_mb)
    data = upload.read()
    return _decode(data, field, hint) if text else data


def read_module_upload(upload: Upload, *, field: str) -> str:
    """An uploaded Python module as text, refused unread when it cannot fit ``NASWEB_MAX_MODULE_CHARS``."""
    limit = settings.NASWEB_MAX_MODULE_CHARS
    if upload.size is not None and upload.size > BYTES_PER_CHAR * limit:
        raise UploadError(field, f"the module file is over the limit of {limit} characters (NASWEB_MAX_MODULE_CHARS)")
    return _decode(upload.read(), field, "")
