"""A user chooses what the engine fits to the results (its option ``surrogate``): the Gaussian process by
default, or the space's pretrained deep ensemble, fine-tuned; the choice reaches the engine and survives a clone."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile

from searches import engine
from searches.models import SearchInstance
from searches.storage import EvaluationRowStorage
from tests.api.expect import assert_error

EVALUATOR = "def evaluate(encoding, fidelity):\n    return float(encoding[0])\n"


def body(space, **extra) -> dict:
    return {"space": space.id, "name": "fit", "evaluator_kind": "module", "budget": 5, "evaluator_source": EVALUATOR,
            **extra}


def test_a_search_is_created_with_the_fine_tuned_ensemble(api, make_space) -> None:
    response = api("owner").post("/api/searches/", body(make_space(), surrogate="ensemble"), format="json")
    assert response.status_code == 201, response.content
    assert response.json()["surrogate"] == "ensemble"
    assert SearchInstance.objects.get(id=response.json()["id"]).surrogate == "ensemble"


def test_the_default_surrogate_is_the_gaussian_process(api, make_space) -> None:
    response = api("owner").post("/api/searches/", body(make_space()), format="json")
    assert response.status_code == 201, response.content
    assert response.json()["surrogate"] == "gp"
    assert SearchInstance.objects.get(id=response.json()["id"]).surrogate == "gp"


@pytest.mark.parametrize("surrogate", ["forest", "", "GP", 1])
def test_an_unknown_surrogate_is_refused_naming_the_field_and_nothing_is_stored(api, make_space,
                                                                                surrogate: object) -> None:
    response = api("owner").post("/api/searches/", body(make_space(), surrogate=surrogate), format="json")
    assert_error(response, 400, "surrogate")
    assert not SearchInstance.objects.exists()


def test_the_engine_of_a_stored_search_fits_the_chosen_surrogate(api, make_space, pretrained_bundle) -> None:
    """What the search step builds (``engine_for``) reads the option from the row: the ensemble's search
    starts from a deep ensemble, the default's from a GP."""
    from nastune.gp import EmbeddingGP
    from nastune.surrogate import DeepEnsemble

    space = make_space()
    space.bundle_file.save("space.nastune", ContentFile(pretrained_bundle.read_bytes()), save=True)
    client = api("owner")
    ensemble = SearchInstance.objects.get(id=client.post(
        "/api/searches/", body(space, surrogate="ensemble"), format="json").json()["id"])
    default = SearchInstance.objects.get(id=client.post("/api/searches/", body(space), format="json").json()["id"])

    assert EvaluationRowStorage(ensemble).load_config()["options"]["surrogate"] == "ensemble"
    driver = engine.engine_for(ensemble)
    assert driver.options["surrogate"] == "ensemble"
    assert isinstance(driver._fresh_model(), DeepEnsemble)  # the option takes effect, not just travels
    driver = engine.engine_for(default)
    assert driver.options["surrogate"] == "gp"
    assert isinstance(driver._fresh_model(), EmbeddingGP)


def test_clone_keeps_the_surrogate_unless_changed(api, make_search) -> None:
    search = make_search(state=SearchInstance.State.FINISHED)
    SearchInstance.objects.filter(id=search.id).update(surrogate="ensemble")
    client = api("owner")
    kept = client.post(f"/api/searches/{search.id}/clone/", {}, format="json")
    assert kept.status_code == 201, kept.content
    assert kept.json()["surrogate"] == "ensemble"
    assert SearchInstance.objects.get(id=kept.json()["id"]).surrogate == "ensemble"
    changed = client.post(f"/api/searches/{search.id}/clone/", {"surrogate": "gp"}, format="json")
    assert changed.status_code == 201, changed.content
    assert SearchInstance.objects.get(id=changed.json()["id"]).surrogate == "gp"
    assert_error(client.post(f"/api/searches/{search.id}/clone/", {"surrogate": "forest"}, format="json"),
                 400, "surrogate")
    assert SearchInstance.objects.count() == 3


def test_the_openapi_schema_documents_the_surrogate(db) -> None:
    from rest_framework.test import APIClient

    schemas = APIClient().get("/api/schema/?format=json").json()["components"]["schemas"]
    assert schemas["SurrogateEnum"]["enum"] == ["gp", "ensemble"]
    assert schemas["SearchCreateInputRequest"]["properties"]["surrogate"]["default"] == "gp"
    for name in ("SearchCreateInputRequest", "SearchCloneInputRequest", "Search"):
        assert "SurrogateEnum" in str(schemas[name]["properties"]["surrogate"]), name
