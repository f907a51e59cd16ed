"""The New space form shows hostile encodings (100,000 levels deep, a 5,000-digit number) next to the file field."""

from __future__ import annotations

import pytest

from spaces.models import SearchSpace
from tests.api.test_hostile_input import DEEP, LONG_NUMBER
from tests.frontend.test_space_create import _field_error, _upload


@pytest.mark.parametrize(("text", "reason"), [(DEEP, "deeper than"), (f"[[{LONG_NUMBER}, 1]]", "digits")])
def test_the_new_space_form_shows_hostile_encodings_next_to_the_file_field(owner_client, text, reason) -> None:
    response = _upload(owner_client, encodings=text.encode())
    assert response.status_code == 200
    assert reason in _field_error(response.content.decode(), "id_upload-encodings")
    assert not SearchSpace.objects.exists()
