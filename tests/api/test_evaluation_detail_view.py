"""A user opens one evaluation: its encoding, error and log."""

from __future__ import annotations

from searches.models import Evaluation
from tests.api.tiny import TINY_ENCODINGS


def test_the_detail_has_the_encoding_and_the_log_tail(api, make_search) -> None:
    search = make_search(n_done=3, n_failed=1)
    failed = search.evaluations.get(state="failed")
    body = api("owner").get(f"/api/searches/{search.id}/evaluations/{failed.id}/").json()
    assert body["encoding"] == TINY_ENCODINGS[failed.encoding_index]
    assert body["log_tail"] == "log of evaluation 4\n" and body["error"].endswith("ValueError: broken")


def test_the_whole_log_comes_as_plain_text(api, make_search, tmp_path) -> None:
    search = make_search(n_done=1, n_failed=0, n_running=0)
    evaluation = search.evaluations.get()
    log = tmp_path / "0-hi-1.log"
    log.write_text("line 1\n" * 5000)
    Evaluation.objects.filter(id=evaluation.id).update(log_file=str(log))
    response = api("owner").get(f"/api/searches/{search.id}/evaluations/{evaluation.id}/log/",
                                HTTP_ACCEPT="text/plain")
    assert response.status_code == 200 and response["Content-Type"] == "text/plain; charset=utf-8"
    assert response.content.decode() == "line 1\n" * 5000


def test_without_a_log_file_the_stored_tail_is_the_log(api, make_search) -> None:
    search = make_search(n_done=1, n_failed=0, n_running=0)
    evaluation = search.evaluations.get()
    response = api("owner").get(f"/api/searches/{search.id}/evaluations/{evaluation.id}/log/")
    assert response.content.decode() == "log of evaluation 1\n"


def test_an_evaluation_of_another_search_is_not_found_through_this_one(api, make_search) -> None:
    first, second = make_search(), make_search()
    other = second.evaluations.first()
    assert api("owner").get(f"/api/searches/{first.id}/evaluations/{other.id}/").status_code == 404
