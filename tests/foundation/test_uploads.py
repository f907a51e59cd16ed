"""One upload rule for every form and API call: a size limit checked before reading, UTF-8 text, the field named."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from nasweb.uploads import UploadError, check_upload_size, read_module_upload, read_upload


def test_a_text_upload_is_read_as_text_without_its_byte_order_mark() -> None:
    upload = SimpleUploadedFile("t.csv", "\ufeffindex,hi\n0,0.5\n".encode())
    assert read_upload(upload, field="evaluator_table") == "index,hi\n0,0.5\n"


def test_a_binary_upload_is_read_as_bytes() -> None:
    assert read_upload(SimpleUploadedFile("b.bin", b"\xff\x00"), field="bundle", text=False) == b"\xff\x00"


def test_an_upload_that_is_not_utf8_is_refused_on_its_field_with_the_hint() -> None:
    with pytest.raises(UploadError) as caught:
        read_upload(SimpleUploadedFile("e.json", b"\xff\xfe\x00"), field="encodings", hint="; upload JSON or CSV")
    assert (caught.value.field, caught.value.reason) == ("encodings", "the file is not UTF-8 text; upload JSON or CSV")


def test_an_upload_over_the_limit_is_refused_before_it_is_read(settings) -> None:
    settings.NASWEB_MAX_UPLOAD_MB = 1
    upload = SimpleUploadedFile("big.csv", b"x" * (2**20 + 1))
    with pytest.raises(UploadError) as caught:
        read_upload(upload, field="evaluator_table")
    assert caught.value.field == "evaluator_table"
    assert "over the limit of 1 MB (NASWEB_MAX_UPLOAD_MB)" in caught.value.reason
    assert upload.tell() == 0  # nothing was read
    check_upload_size(upload, field="bundle", max_mb=2)  # a larger explicit limit lets it through


def test_a_module_upload_that_cannot_fit_the_character_limit_is_refused(settings) -> None:
    settings.NASWEB_MAX_MODULE_CHARS = 100
    with pytest.raises(UploadError) as caught:
        read_module_upload(SimpleUploadedFile("m.py", b"#" * 401), field="evaluator_module")
    assert caught.value.field == "evaluator_module" and "100 characters" in caught.value.reason
    assert read_module_upload(SimpleUploadedFile("m.py", b"x = 1\n"), field="module") == "x = 1\n"
