"""The web form and the API build the same SearchSpec: the same input gives the same refusal on the same field."""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from searches.models import SearchInstance
from tests.frontend.factories import make_space

TABLE = "index,hi,lo\n" + "".join(f"{i},{50 + i},{40 + i}\n" for i in range(40))


@pytest.mark.parametrize(("fields", "field"), [
    ({"budget": "0"}, "budget"),
    ({"lo_fi_cost": "2", "hi_fi_cost": "1"}, "lo_fi_cost"),
    ({"seed": "-1"}, "seed"),
    ({"parallelism": "65"}, "parallelism"),
    ({"delay_s": "4000"}, "delay_s"),
    ({"evaluator_table": b"index,hi\n99,1\n"}, "evaluator_table"),
])
def test_the_form_and_the_api_refuse_alike(owner_client, users, fields: dict, field: str) -> None:
    space = make_space(users["owner"], n=40)
    data = {"space": str(space.id), "name": "same", "evaluator_kind": "tabular", "budget": "5", "hi_fi_cost": "1",
            "lo_fi_cost": "", "parallelism": "1", "seed": "0", "acquisition": "ei", **fields}
    table = data.pop("evaluator_table", TABLE.encode())
    delay = data.pop("delay_s", None)
    form_data = {**data, "evaluator_table": SimpleUploadedFile("t.csv", table), "delay_s": delay or ""}
    page = owner_client.post("/searches/new/", form_data).content.decode()
    match = re.search(rf'<p class="field-error" id="id_{field}_error">([^<]*)', page)
    assert match, f"no form error next to {field}"

    api_data = {**data, "evaluator_table": SimpleUploadedFile("t.csv", table)}
    if delay is not None:
        api_data["evaluator_config"] = f'{{"delay_s": {delay}}}'
    response = owner_client.post("/api/searches/", api_data)
    assert response.status_code == 400, response.content
    (error,) = response.json()["errors"]
    api_field = f"evaluator_config.{field}" if field == "delay_s" else field
    assert (error["field"], error["reason"]) == (api_field, match.group(1).strip())
    assert not SearchInstance.objects.exists()
