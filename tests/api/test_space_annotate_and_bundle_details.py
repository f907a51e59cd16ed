"""A user renames a space and keeps its description and tags; a downloaded bundle carries the description,
sample input shape and tags back in on import; a .json upload is always read as JSON."""

from __future__ import annotations

from pathlib import Path

from django.core.files.uploadedfile import SimpleUploadedFile

from spaces.models import SearchSpace
from tests.api.expect import assert_error
from tests.api.test_space_create import imported


def test_rename_describe_and_tag_a_space(api, make_space) -> None:
    space = make_space()
    response = api("owner").patch(f"/api/spaces/{space.id}/", {"name": " widths ", "description": "CIFAR cells",
                                                               "tags": ["cifar", "cifar", " small"]}, format="json")
    assert response.status_code == 200, response.content
    assert (response.json()["name"], response.json()["description"], response.json()["tags"]) == \
        ("widths", "CIFAR cells", ["cifar", "small"])
    assert_error(api("owner").patch(f"/api/spaces/{space.id}/", {"name": ""}, format="json"), 400, "name")
    assert_error(api("owner").patch(f"/api/spaces/{space.id}/", {"tags": ["t" * 41]}, format="json"), 400, "tags")
    assert api("outsider").patch(f"/api/spaces/{space.id}/", {"name": "mine"}, format="json").status_code == 404
    space.refresh_from_db()
    assert space.name == "widths"


def test_a_reimported_download_keeps_description_sample_input_and_tags(api, pretrained_bundle: Path) -> None:
    client = api("owner")
    first = imported(client, client.post("/api/spaces/", {
        "bundle": SimpleUploadedFile("b.nastune", pretrained_bundle.read_bytes()), "name": "original"},
        format="multipart"))
    SearchSpace.objects.filter(id=first["id"]).update(description="widths x depths", sample_input_shape=[1, 3, 8, 8],
                                                      tags=["tiny"])
    data = b"".join(client.get(f"/api/spaces/{first['id']}/bundle/").streaming_content)
    body = imported(client, client.post("/api/spaces/", {"bundle": SimpleUploadedFile("o.nastune", data),
                                                        "name": "copy"}, format="multipart"))
    assert (body["description"], body["sample_input_shape"], body["tags"]) == \
        ("widths x depths", [1, 3, 8, 8], ["tiny"])


def test_a_reimported_download_keeps_the_transferred_searches_best_results(api, pretrained_bundle: Path) -> None:
    """A transfer's ranking travels with its profile column; one whose column the bundle lacks is dropped."""
    client = api("owner")
    first = imported(client, client.post("/api/spaces/", {
        "bundle": SimpleUploadedFile("b.nastune", pretrained_bundle.read_bytes()), "name": "original"},
        format="multipart"))
    column = SearchSpace.objects.get(id=first["id"]).metrics[0]  # stands for a transferred search's column
    SearchSpace.objects.filter(id=first["id"]).update(transfers=[
        {"name": column, "search": 7, "best": [3, 1, 10**6]}, {"name": "not_in_the_profile", "search": 8, "best": [2]}])
    data = b"".join(client.get(f"/api/spaces/{first['id']}/bundle/").streaming_content)
    body = imported(client, client.post("/api/spaces/", {"bundle": SimpleUploadedFile("o.nastune", data),
                                                        "name": "copy"}, format="multipart"))
    assert body["transfers"] == [{"name": column, "best": [3, 1]}]  # no other server's search id, no index outside


def test_a_bundle_with_results_added_in_the_library_imports_their_ranking(api, pretrained_bundle: Path,
                                                                         tmp_path: Path) -> None:
    from nastune import load_search_space

    space = load_search_space(pretrained_bundle)
    space.add_results("c10", {0: 0.5, 4: 0.9, 7: 0.7})
    data = space.save(tmp_path / "with-results.nastune").read_bytes()
    body = imported(api("owner"), api("owner").post("/api/spaces/", {
        "bundle": SimpleUploadedFile("r.nastune", data), "name": "from the library"}, format="multipart"))
    assert body["transfers"] == [{"name": "c10", "best": [4, 7, 0]}]


def test_a_bundle_written_by_nastune_alone_imports_with_the_default_description(api, pretrained_bundle: Path) -> None:
    response = api("owner").post("/api/spaces/", {"bundle": SimpleUploadedFile("b.nastune",
                                                                               pretrained_bundle.read_bytes())},
                                 format="multipart")
    assert imported(api("owner"), response)["description"] == "Imported bundle"


def test_a_json_file_that_is_not_a_list_is_refused_not_read_as_csv(api) -> None:
    module = "def encoding_to_net(encoding):\n    return None\n"
    for text in ('"hello"', "hello", "42"):
        response = api("owner").post("/api/spaces/", {
            "name": "x", "encodings": SimpleUploadedFile("encodings.json", text.encode()),
            "module_source": module, "sample_input_shape": "1,3,8,8"}, format="multipart")
        assert_error(response, 400, "encodings", "json")
    assert not SearchSpace.objects.exists()
