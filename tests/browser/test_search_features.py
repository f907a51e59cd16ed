"""Dashboard features in real Chromium: encoding columns in the evaluations table, the parallel-coordinates
plot drawn with data, extending the budget of a finished search, and cloning a search's settings."""

from __future__ import annotations

import pytest

# fixtures of the API tests: the tiny space as a row, and a real bundle of it with a pretrained surrogate
from tests.api.conftest import make_space as make_api_space  # noqa: F401
from tests.api.conftest import pretrained_bundle  # noqa: F401

pytestmark = pytest.mark.browser


def _finished_search(users, **options):
    from tests.frontend.factories import make_search, make_space

    space = make_space(users["owner"])  # encodings [width, depth]
    return make_search(users["owner"], space, state="finished", name="widths", **options)


def test_the_table_has_one_column_per_position_and_parallel_coordinates_are_drawn(open_session, users) -> None:
    from playwright.sync_api import expect

    from searches.selectors import search_encodings

    search = _finished_search(users, n_evaluations=24, failed_every=8)
    owner = open_session()
    owner.log_in("owner", "owner-pass-123")
    owner.goto(f"/searches/{search.id}/?ordering=seq")
    table = owner.page.locator("#evaluations-table table")
    expect(table.locator("thead th.pos")).to_have_text(["p0", "p1"])
    first = search.evaluations.order_by("seq").first()
    width, depth = search_encodings(search)[first.encoding_index]
    row = table.locator(f"tr[data-evaluation='{first.id}']")
    expect(row.locator("td.pos")).to_have_text([str(width), str(depth)])

    chart = owner.page.locator("#parcoords-chart")
    done_hi = search.evaluations.filter(state="done", fidelity="hi").count()
    expect(chart).to_have_attribute("data-points", str(done_hi))
    expect(chart).to_have_attribute("data-dimensions", "3")  # p0, p1 and the value
    expect(chart.locator(".axis-title")).to_have_text(["p0", "p1", "value"])  # Plotly drew the three axes
    expect(owner.page.locator("#importance-chart .bars path")).to_have_count(2)
    expect(owner.page.locator("#slice-chart")).to_have_attribute("data-points", str(done_hi))
    owner.shoot("positions")
    assert owner.console_errors == []


def test_an_empty_search_says_no_values_yet_instead_of_axes(open_session, users) -> None:
    from playwright.sync_api import expect

    search = _finished_search(users, n_evaluations=0)
    owner = open_session()
    owner.log_in("owner", "owner-pass-123")
    owner.goto(f"/searches/{search.id}/")
    expect(owner.page.locator("#curve-chart .no-values")).to_contain_text("No values yet")
    expect(owner.page.locator("#parcoords-chart .no-values")).to_contain_text("No values yet")
    expect(owner.page.locator("#curve-chart .main-svg")).to_have_count(0)
    assert owner.console_errors == []


def test_extending_the_budget_of_a_finished_search_runs_it_again(open_session, users) -> None:
    from playwright.sync_api import expect

    search = _finished_search(users, n_evaluations=10, budget=10)
    owner = open_session()
    owner.log_in("owner", "owner-pass-123")
    owner.goto(f"/searches/{search.id}/")
    expect(owner.page.locator("#search-state")).to_have_text("finished")
    owner.page.get_by_label("New budget").fill("25")
    owner.page.get_by_role("button", name="Extend budget").click()
    expect(owner.page.get_by_text("Budget raised to 25.")).to_be_visible()
    expect(owner.page.locator("#budget")).to_have_text("25")
    search.refresh_from_db()
    assert (search.budget, search.state) == (25, "running")
    owner.shoot("extended")
    assert owner.console_errors == []


def test_clone_opens_a_prefilled_form_that_starts_a_new_search(open_session, users) -> None:
    from playwright.sync_api import expect

    from searches.models import SearchInstance

    search = _finished_search(users, n_evaluations=6)
    SearchInstance.objects.filter(id=search.id).update(seed=5, direction="minimize", acquisition="ucb")
    owner = open_session()
    owner.log_in("owner", "owner-pass-123")
    owner.goto(f"/searches/{search.id}/")
    owner.page.get_by_role("link", name="Clone settings").click()
    expect(owner.page.get_by_role("heading", level=1)).to_have_text("New search")
    expect(owner.page.locator("#clone-notice")).to_contain_text("widths")
    expect(owner.page.get_by_label("Name")).to_have_value("widths (copy)")
    expect(owner.page.get_by_label("Seed")).to_have_value("5")
    expect(owner.page.get_by_label("Better values are")).to_have_value("minimize")
    owner.page.get_by_label("Budget", exact=True).fill("7")
    owner.page.get_by_role("button", name="Start search").click()
    expect(owner.page.get_by_text("Search “widths (copy)” started.")).to_be_visible()
    clone = SearchInstance.objects.get(name="widths (copy)")
    assert (clone.seed, clone.direction, clone.acquisition, clone.budget, clone.evaluator_kind) == \
        (5, "minimize", "ucb", 7, "tabular")
    owner.shoot("cloned")
    assert owner.console_errors == []


def test_compare_puts_searches_on_different_spaces_on_one_rank_scale(open_session, users) -> None:
    from playwright.sync_api import expect

    from tests.frontend.factories import make_search, make_space

    first = make_search(users["owner"], make_space(users["owner"]), name="forty", n_evaluations=8)
    second = make_search(users["owner"], make_space(users["owner"], name="small", n=16), name="sixteen",
                         n_evaluations=5)
    owner = open_session()
    owner.log_in("owner", "owner-pass-123")
    owner.goto(f"/searches/compare/?ids={first.id},{second.id}")
    chart = owner.page.locator("#compare-chart")
    expect(chart).to_have_attribute("data-traces", "4")  # two searches and each table's exact reference
    owner.page.get_by_label("top fraction of the space").check()
    expect(chart).to_have_attribute("data-mode", "rank")
    expect(chart.locator(".legendtext")).to_have_text(
        ["forty", "sixteen", "random search, expected (N = 40)", "random search, expected (N = 16)"])
    owner.page.get_by_label("regret").check()
    expect(chart).to_have_attribute("data-mode", "regret")
    owner.shoot("compare-regret")
    assert owner.console_errors == []


def test_choosing_an_encodings_file_offers_a_type_per_position(open_session, users, tmp_path) -> None:
    from playwright.sync_api import expect

    encodings = tmp_path / "encodings.json"
    encodings.write_text('[[4, 1, "relu"], [8, 2, "tanh"], [16, 3, "relu"]]')
    owner = open_session()
    owner.log_in("owner", "owner-pass-123")
    owner.goto("/spaces/new/")
    owner.page.get_by_label("Encodings file").set_input_files(str(encodings))
    box = owner.page.locator("#position-types")
    expect(box.locator("select")).to_have_count(3)
    expect(box.locator("#position-type-2 option:checked")).to_have_text("infer (categorical)")
    owner.page.get_by_label("p0", exact=True).select_option("numeric")
    expect(owner.page.get_by_label("Position types")).to_have_value("numeric,infer,infer")
    assert owner.console_errors == []


def test_on_a_phone_no_plotly_toolbar_covers_the_legend(open_session, users) -> None:
    from playwright.sync_api import expect

    from tests.browser.conftest import PHONE

    search = _finished_search(users, n_evaluations=12, lo_every=3)
    phone = open_session(PHONE)
    phone.log_in("owner", "owner-pass-123")
    phone.goto(f"/searches/{search.id}/")
    expect(phone.page.locator("#curve-chart .legend")).to_have_count(1)
    expect(phone.page.locator("#curve-chart .modebar")).to_have_count(0)
    desktop = open_session()
    desktop.log_in("owner", "owner-pass-123")
    desktop.goto(f"/searches/{search.id}/")
    expect(desktop.page.locator("#curve-chart .legend")).to_have_count(1)
    expect(desktop.page.locator("#curve-chart .modebar")).to_have_count(1)
    phone.shoot("phone-curve")
    assert phone.console_errors == [] and desktop.console_errors == []


def test_a_waiting_evaluation_says_how_many_start_before_it(open_session, users) -> None:
    """Fair share: the teammate's evaluation waits behind the owner's next one only, not behind all of them."""
    from playwright.sync_api import expect

    from searches.models import Evaluation
    from tests.frontend.factories import make_search, make_space

    owner_search = make_search(users["owner"], make_space(users["owner"]), n_evaluations=0, name="greedy")
    mine = make_search(users["teammate"], make_space(users["teammate"]), n_evaluations=0, name="mine")
    for k in range(4):  # the owner queued first
        Evaluation.objects.create(search=owner_search, encoding_index=k, fidelity="hi")
    first, second = (Evaluation.objects.create(search=mine, encoding_index=k, fidelity="hi") for k in range(2))
    teammate = open_session()
    teammate.log_in("teammate", "teammate-pass-123")
    teammate.goto(f"/searches/{mine.id}/")
    expect(teammate.page.locator(f"[data-inflight='{first.id}'] .waiting")).to_have_text(
        "waiting for a worker (1 ahead)")
    expect(teammate.page.locator(f"[data-inflight='{second.id}'] .waiting")).to_have_text(
        "waiting for a worker (3 ahead)")
    teammate.shoot("waiting")
    assert teammate.console_errors == []


@pytest.mark.slow
def test_an_evaluator_that_always_fails_spends_the_budget_and_the_search_stops_failed(
        open_session, users, make_api_space, pretrained_bundle) -> None:  # noqa: F811 (the imported fixtures)
    """Issue 16: failures spend the budget, and the dashboard shows the search failed with the last error."""
    from django.core.files.base import ContentFile
    from playwright.sync_api import expect

    from searches import services
    from searches.models import Evaluation, SearchInstance
    from searches.spec import SearchSpec

    space = make_api_space()
    space.bundle_file.save("space.nastune", ContentFile(pretrained_bundle.read_bytes()), save=True)
    search = services.search_create(owner=users["owner"], space=space, spec=SearchSpec(
        name="broken", evaluator_kind="module", budget=3, seed=1,
        evaluator_source="def evaluate(encoding, fidelity):\n    raise RuntimeError('CUDA out of memory')\n"))
    for _ in range(10):  # what the workers do, one message at a time (user code in the real sandbox)
        services.search_step(search_id=search.id)
        search.refresh_from_db()
        if search.state not in SearchInstance.ACTIVE_STATES:
            break
        for evaluation_id in search.evaluations.filter(state="queued").values_list("id", flat=True):
            services.evaluation_run(evaluation_id=evaluation_id)
    assert search.evaluations.filter(state=Evaluation.State.FAILED).count() == 3

    owner = open_session()
    owner.log_in("owner", "owner-pass-123")
    owner.goto(f"/searches/{search.id}/")
    expect(owner.page.locator("#search-state")).to_have_text("failed")
    expect(owner.page.locator("#search-failure")).to_contain_text("CUDA out of memory")
    expect(owner.page.locator("#spent")).to_have_text("3")
    expect(owner.page.locator("#budget")).to_have_text("3")
    owner.shoot("failed-search")
    assert owner.console_errors == []
