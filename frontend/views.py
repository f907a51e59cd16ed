"""Dashboard pages. Views parse input, call one selector or service, and render.

Every object is read through an owner-scoped selector, so someone else's space or search is a
404 here exactly as in the API. Live data (progress, Pareto front, network summaries) is
fetched by the pages' scripts from the JSON API; forms post here and call the same services
as the API.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from frontend import forms
from frontend.highlight import highlight_python
from nasweb.errors import DomainError, NotFoundError
from searches import selectors as search_selectors
from searches import services as search_services
from searches.models import Evaluation, SearchInstance
from spaces import selectors as space_selectors
from spaces import services as space_services
from spaces.models import SearchSpace

EVALUATIONS_PER_PAGE = 25
PROFILE_POINTS = 5000
PIPELINE = (
    (SearchSpace.State.VALIDATING, "Validation"),
    (SearchSpace.State.PROFILING, "Profiling"),
    (SearchSpace.State.PRETRAINING, "Pretraining"),
    (SearchSpace.State.READY, "Ready"),
)


def _not_found_is_404(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except NotFoundError as exc:
            raise Http404(exc.reason) from None

    return wrapped


def page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A dashboard page: logged in only; another user's object is "not found"."""
    return login_required(_not_found_is_404(view))


# --------------------------------------------------------------------------------------------------
# Home
# --------------------------------------------------------------------------------------------------


@page
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    searches = list(search_selectors.search_list(owner=request.user)[:10])
    sparklines = {search.id: search_selectors.search_sparkline(search=search) for search in searches}
    spaces = list(space_selectors.space_list(owner=request.user)[:5])
    return render(request, "frontend/home.html", {"searches": searches, "sparklines": sparklines, "spaces": spaces})


# --------------------------------------------------------------------------------------------------
# Search spaces
# --------------------------------------------------------------------------------------------------


@page
@require_GET
def space_list(request: HttpRequest) -> HttpResponse:
    spaces = Paginator(space_selectors.space_list(owner=request.user), 50).get_page(request.GET.get("page"))
    return render(request, "frontend/space_list.html", {"spaces": spaces})


def _create_space(request: HttpRequest, kind: str, form: Any) -> SearchSpace:
    data = form.cleaned_data
    if kind == "upload":
        return space_services.space_create(
            owner=request.user, name=data["name"], description=data["description"],
            encodings_upload=form.encodings_upload(), module_source=form.module_text(),
            sample_input_shape=data["sample_input_shape"], max_profiled=form.max_profiled_value(),
            position_types=data.get("position_types") or None,
        )
    if kind == "example":
        return space_services.space_create_from_example(owner=request.user, example=data["example"],
                                                        name=data["name"])
    return space_services.space_import_bundle(owner=request.user, bundle_upload=data["bundle"], name=data["name"])


SPACE_FORMS = {"upload": forms.SpaceUploadForm, "example": forms.SpaceExampleForm, "bundle": forms.SpaceBundleForm}


@page
def space_new(request: HttpRequest) -> HttpResponse:
    bound = request.POST.get("form") if request.method == "POST" else None
    if request.method not in ("GET", "POST") or (request.method == "POST" and bound not in SPACE_FORMS):
        return HttpResponse(status=400 if request.method == "POST" else 405)
    space_forms = {
        kind: cls(request.POST, request.FILES, prefix=kind) if kind == bound else cls(prefix=kind)
        for kind, cls in SPACE_FORMS.items()
    }
    if bound:
        form = space_forms[bound]
        if form.is_valid():
            try:
                space = _create_space(request, bound, form)
            except DomainError as exc:
                form.add_domain_error(exc)
            else:
                messages.success(request, f"Search space “{space.name}” created.")
                return redirect("space-detail", space_id=space.id)
        if bound == "upload":
            form.keep_valid_uploads()
    # A form with errors comes back with 200, as Django's own form views do (a 400 page would be a
    # console error in the browser for what is an ordinary, explained mistake).
    active = bound or request.GET.get("tab") or "upload"
    return render(request, "frontend/space_new.html", {
        "forms": space_forms, "active": active if active in SPACE_FORMS else "upload",
        "examples": forms.available_examples(),
    })


@page
@require_POST
def space_infer_positions(request: HttpRequest) -> HttpResponse:
    """The New space form's preview of each position's type. A file the engine refuses is an ordinary,
    explained mistake: answered 200 with ``{"errors": [...]}`` like the form itself (a 4xx would be a
    console error in the browser), where the API answers 400."""
    upload = request.FILES.get("encodings")
    if upload is None:
        return JsonResponse({"errors": [{"field": "encodings", "reason": "choose an encodings file"}]})
    try:
        positions = space_services.space_infer_positions(encodings_upload=upload)
    except DomainError as exc:
        return JsonResponse({"errors": [{"field": exc.field, "reason": exc.reason}]})
    return JsonResponse({"positions": positions})


def _pipeline_steps(space: SearchSpace) -> list[dict[str, str]]:
    """Each pipeline step as done, current, pending or failed (a failed space shows where it stopped)."""
    order = [state for state, _ in PIPELINE]
    current = space.state
    if space.state == SearchSpace.State.FAILED:
        if not space.progress_total:
            current = SearchSpace.State.VALIDATING
        elif space.progress_done < space.progress_total:
            current = SearchSpace.State.PROFILING
        else:
            current = SearchSpace.State.PRETRAINING
    position_now = order.index(current) if current in order else 0
    steps = []
    for position, (state, label) in enumerate(PIPELINE):
        if space.state == SearchSpace.State.READY or position < position_now:
            status = "done"
        elif position == position_now:
            status = "failed" if space.state == SearchSpace.State.FAILED else "current"
        else:
            status = "pending"
        steps.append({"state": state, "label": label, "status": status})
    return steps


@page
@require_GET
def space_detail(request: HttpRequest, space_id: int) -> HttpResponse:
    space = space_selectors.space_get(owner=request.user, space_id=space_id)
    profile = None
    if space.metrics and space.profile_file:
        profile = space_selectors.space_profile_points(space=space, max_points=PROFILE_POINTS)
    return render(request, "frontend/space_detail.html", {
        "space": space,
        "steps": _pipeline_steps(space),
        "profile": profile,
        "quality": space.surrogate_quality or {},
        "module_html": highlight_python(space.module_source) if space.module_source else "",
        "searches": search_selectors.search_list(owner=request.user).filter(space=space)[:50],
        "live": space.state not in (SearchSpace.State.READY, SearchSpace.State.FAILED),
    })


@page
@require_POST
def space_annotate(request: HttpRequest, space_id: int) -> HttpResponse:
    space = space_selectors.space_get(owner=request.user, space_id=space_id)
    try:
        space_services.space_annotate(space=space, name=request.POST.get("name"),
                                      description=request.POST.get("description"), tags=request.POST.get("tags"))
    except DomainError as exc:
        messages.error(request, exc.reason)
    else:
        messages.success(request, "Name, description and tags saved.")
    return redirect("space-detail", space_id=space.id)


@page
@require_POST
def space_results(request: HttpRequest, space_id: int) -> HttpResponse:
    """Transfer: pretrain the space again on one of its searches' results."""
    space = space_selectors.space_get(owner=request.user, space_id=space_id)
    try:
        search = search_selectors.search_get(owner=request.user, search_id=request.POST.get("search"))
        space_services.space_add_search_results(space=space, search=search, name=request.POST.get("name", ""))
    except DomainError as exc:
        messages.error(request, exc.reason)
    else:
        messages.success(request, f"Pretraining again with the results of “{search.name}”.")
    return redirect("space-detail", space_id=space.id)


@page
@require_POST
def space_delete(request: HttpRequest, space_id: int) -> HttpResponse:
    space = space_selectors.space_get(owner=request.user, space_id=space_id)
    try:
        space_services.space_delete(space=space)
    except DomainError as exc:
        messages.error(request, exc.reason)
        return redirect("space-detail", space_id=space.id)
    messages.success(request, f"Search space “{space.name}” deleted.")
    return redirect("space-list")


# --------------------------------------------------------------------------------------------------
# Searches
# --------------------------------------------------------------------------------------------------


@page
def search_new(request: HttpRequest) -> HttpResponse:
    if request.method not in ("GET", "POST"):
        return HttpResponse(status=405)
    ready = list(space_selectors.space_list(owner=request.user).filter(state=SearchSpace.State.READY))
    clone_id = request.POST.get("clone_of") if request.method == "POST" else request.GET.get("clone")
    original = search_selectors.search_get(owner=request.user, search_id=clone_id) if clone_id else None
    chosen = request.POST.get("space") if request.method == "POST" else request.GET.get("space")
    if chosen is None and original is not None:
        chosen = str(original.space_id)
    chosen_space = next((space for space in ready if str(space.id) == str(chosen)), None)
    if request.method == "POST":
        form = forms.SearchForm(request.POST, request.FILES, spaces=ready, clone_table=_clone_table(original),
                                owner=request.user)
        if form.is_valid():
            try:
                search = _create_search(request, form, chosen_space)
            except DomainError as exc:
                form.add_domain_error(exc)
            else:
                messages.success(request, f"Search “{search.name}” started.")
                return redirect("search-dashboard", search_id=search.id)
    else:
        initial: dict[str, Any] = {}
        if chosen_space is not None:
            initial["space"] = str(chosen_space.id)
            count = chosen_space.searches.count()
            initial["name"] = f"{chosen_space.name} search {count + 1}"
            shape = chosen_space.sample_input_shape or []
            if len(shape) == 4 and shape[-1] == shape[-2]:
                initial["image_size"] = str(max(8, shape[-1]))
        if original is not None:
            initial.update(_clone_initial(original))
        form = forms.SearchForm(initial=initial, spaces=ready, owner=request.user)
    not_ready = None
    if chosen and chosen_space is None:
        try:
            not_ready = space_selectors.space_get(owner=request.user, space_id=chosen)
        except NotFoundError:
            not_ready = None
    return render(request, "frontend/search_new.html", {
        "form": form, "ready_spaces": ready, "not_ready": not_ready, "original": original,
    })


def _clone_initial(search: SearchInstance) -> dict[str, Any]:
    """The New search form's values for a copy of ``search`` (its evaluator settings are form fields)."""
    spec = search_services.search_clone_spec(search=search)
    initial: dict[str, Any] = {
        "space": str(search.space_id), "name": spec.name, "evaluator_kind": spec.evaluator_kind,
        "budget": forms._shown(spec.budget), "hi_fi_cost": forms._shown(spec.hi_fi_cost),
        "lo_fi_cost": forms._shown(spec.lo_fi_cost), "parallelism": spec.parallelism, "seed": spec.seed,
        "acquisition": spec.acquisition, "surrogate": spec.surrogate, "direction": spec.direction,
        "evaluator_source": spec.evaluator_source,
        "initial_candidates": ", ".join(str(i) for i in spec.initial_candidates or []),
        "clone_of": search.id,
        # hardware-aware goals in the form's text
        "objectives": ", ".join(f"{name}:{direction}" for name, direction in spec.objectives),
        "constraints": "; ".join(f"{c['name']} {c['op']} {c['bound']:g}" for c in spec.constraints),
        "reference_point": ", ".join(f"{name}={value:g}" for name, value in spec.reference_point.items()),
    }
    for key, value in spec.evaluator_config.items():
        initial[key] = forms._shown(value)
    return initial


def _clone_table(search: SearchInstance | None) -> bytes | None:
    if search is None or not search.evaluator_table:
        return None
    with search.evaluator_table.open("rb") as handle:
        return handle.read()


def _create_search(request: HttpRequest, form: forms.SearchForm, space: SearchSpace | None) -> SearchInstance:
    if space is None:
        raise DomainError("space", "choose a ready search space")
    return search_services.search_create(owner=request.user, space=space, spec=form.spec())


def _table_params(request: HttpRequest) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """Evaluation-table filters from the query string: selector arguments, the echo, and errors."""
    query = request.GET
    echo = {key: query.get(key, "").strip() for key in ("state", "fidelity", "value_min", "value_max", "ordering")}
    errors = []
    arguments: dict[str, Any] = {"ordering": echo["ordering"] or "-seq"}
    if echo["state"] in Evaluation.State.values:
        arguments["state"] = echo["state"]
    if echo["fidelity"] in Evaluation.Fidelity.values:
        arguments["fidelity"] = echo["fidelity"]
    for key in ("value_min", "value_max"):
        if echo[key]:
            try:
                number = float(echo[key])
                if not math.isfinite(number):
                    raise ValueError(key)
                arguments[key] = number
            except ValueError:
                errors.append(f"{key.replace('_', ' ')} must be a number")
    return arguments, echo, errors


POSITION_COLUMNS_MAX = 16  # longer encodings are shown as one text column (a row of 40 cells is unreadable)
COLUMNS = (
    ("seq", "#"), ("encoding_index", "Encoding"), ("fidelity", "Fidelity"), ("state", "State"),
    ("value", "Value"), (None, "Predicted"), ("duration_s", "Time (s)"), (None, "Device"), ("finished_at", "Finished"),
)


def _evaluations_context(request: HttpRequest, search: SearchInstance) -> dict[str, Any]:
    arguments, echo, errors = _table_params(request)
    evaluations = search_selectors.evaluation_list(search=search, **arguments)
    paged = Paginator(evaluations, EVALUATIONS_PER_PAGE).get_page(request.GET.get("page"))
    encodings = search_selectors.search_encodings(search)
    length = len(encodings[0]) if encodings else 0
    split = 0 < length <= POSITION_COLUMNS_MAX
    for evaluation in paged:  # users recognise a candidate by its encoding, not by its row index
        encoding = encodings[evaluation.encoding_index]
        evaluation.encoding_text = search_selectors.encoding_text(encoding)
        evaluation.encoding_cells = [search_selectors.encoding_text([value])[1:-1] for value in encoding] \
            if split else []
    ordering = arguments["ordering"]
    base = {key: value for key, value in echo.items() if value and key != "ordering"}
    columns = []
    for key, label in COLUMNS:
        column: dict[str, Any] = {"label": label, "key": key}
        if key:
            descending = ordering == f"-{key}"
            column["sort"] = "descending" if descending else ("ascending" if ordering == key else "none")
            column["href"] = "?" + urlencode({**base, "ordering": key if descending else f"-{key}"})
        columns.append(column)
        if key == "encoding_index" and split:  # one column per encoding position
            column["label"] = "Candidate"
            columns.extend({"label": f"p{position}", "key": None, "position": position,
                            "title": f"encoding position {position}"} for position in range(length))
    return {
        "search": search,
        "evaluations": paged,
        "columns": columns,
        "filters": echo,
        "filter_errors": errors,
        "query": urlencode({**base, "ordering": ordering}),
        "states": Evaluation.State.values,
        "fidelities": Evaluation.Fidelity.choices,
        "fragment_url": reverse("search-evaluations", args=[search.id]),
    }


@page
@require_GET
def search_dashboard(request: HttpRequest, search_id: int) -> HttpResponse:
    search = search_selectors.search_get(owner=request.user, search_id=search_id)
    curve = search_selectors.search_curve(search=search)
    seen = [seq for fidelity in curve["curves"].values() for seq in fidelity["evaluations"]]
    return render(request, "frontend/search_dashboard.html", {
        **_evaluations_context(request, search),
        "space": search.space,
        "best_encoding": None if search.best_index is None else search_selectors.encoding_text(
            search_selectors.search_encodings(search)[search.best_index]),
        "curve": {**curve, "cursor": max(seen, default=0), "state": search.state, "space": search.space_id,
                  "has_low_fidelity": search.has_low_fidelity},
        "metrics": [metric for metric in ("params", "flops", "latency", "memory", "params_test")
                    if metric in (search.space.metrics or [])],
        "active": search.state in SearchInstance.ACTIVE_STATES,
        "extend_suggestion": f"{search.budget * 2:g}",
    })


@page
@require_GET
def search_evaluations(request: HttpRequest, search_id: int) -> HttpResponse:
    """The evaluations table alone (the dashboard's script swaps it in when paging, sorting, filtering)."""
    search = search_selectors.search_get(owner=request.user, search_id=search_id)
    return render(request, "frontend/_evaluations.html", _evaluations_context(request, search))


SEARCH_ACTIONS = {
    "pause": (search_services.search_pause, "paused"),
    "resume": (search_services.search_resume, "resumed"),
    "cancel": (search_services.search_cancel, "cancelled"),
}


@page
@require_POST
def search_action(request: HttpRequest, search_id: int, action: str) -> HttpResponse:
    search = search_selectors.search_get(owner=request.user, search_id=search_id)
    if action in FORM_ACTIONS:
        return FORM_ACTIONS[action](request, search)
    if action not in SEARCH_ACTIONS:
        raise Http404("no such action")
    service, done = SEARCH_ACTIONS[action]
    try:
        service(search=search)
    except DomainError as exc:
        messages.error(request, exc.reason)
    else:
        messages.success(request, f"Search {done}.")
    return redirect("search-dashboard", search_id=search.id)


def _extend(request: HttpRequest, search: SearchInstance) -> HttpResponse:
    text = request.POST.get("budget", "").strip()
    try:
        budget = float(text)
        search_services.search_extend_budget(search=search, budget=budget)
    except ValueError:
        messages.error(request, "The new budget must be a number.")
    except DomainError as exc:
        messages.error(request, exc.reason)
    else:
        messages.success(request, f"Budget raised to {search.budget:g}.")
    return redirect("search-dashboard", search_id=search.id)


def _retry_failed(request: HttpRequest, search: SearchInstance) -> HttpResponse:
    try:
        retries = search_services.search_retry_failed(search=search)
    except DomainError as exc:
        messages.error(request, exc.reason)
    else:
        messages.success(request, f"{len(retries)} failed evaluation{'s' if len(retries) != 1 else ''} queued again.")
    return redirect("search-dashboard", search_id=search.id)


def _annotate(request: HttpRequest, search: SearchInstance) -> HttpResponse:
    try:
        search_services.search_annotate(search=search, name=request.POST.get("name"), notes=request.POST.get("notes"),
                                        tags=request.POST.get("tags"))
    except DomainError as exc:
        messages.error(request, exc.reason)
    else:
        messages.success(request, "Name, notes and tags saved.")
    return redirect("search-dashboard", search_id=search.id)


FORM_ACTIONS: dict[str, Callable[[HttpRequest, SearchInstance], HttpResponse]] = {
    "extend": _extend, "retry-failed": _retry_failed, "annotate": _annotate,
}


@page
@require_POST
def search_delete(request: HttpRequest, search_id: int) -> HttpResponse:
    search = search_selectors.search_get(owner=request.user, search_id=search_id)
    try:
        search_services.search_delete(search=search)
    except DomainError as exc:
        messages.error(request, exc.reason)
        return redirect("search-dashboard", search_id=search.id)
    messages.success(request, f"Search “{search.name}” deleted.")
    return redirect("home")


@page
@require_POST
def evaluation_retry(request: HttpRequest, search_id: int, evaluation_id: int) -> HttpResponse:
    search = search_selectors.search_get(owner=request.user, search_id=search_id)
    evaluation = search_selectors.evaluation_get(search=search, evaluation_id=evaluation_id)
    try:
        retry = search_services.evaluation_retry(evaluation=evaluation)
    except DomainError as exc:
        messages.error(request, exc.reason)
    else:
        messages.success(request, f"Encoding {retry.encoding_index} queued again (attempt {retry.attempt}).")
    query = request.POST.get("query", "")
    url = reverse("search-dashboard", args=[search.id])
    return redirect(f"{url}?{query}#evaluations" if query else f"{url}#evaluations")


@page
@require_GET
def search_compare(request: HttpRequest) -> HttpResponse:
    mine = list(search_selectors.search_list(owner=request.user)[:200])
    wanted = []
    for part in [*request.GET.get("ids", "").replace(" ", "").split(","), *request.GET.getlist("pick")]:
        if part.isdigit() and int(part) not in wanted:
            wanted.append(int(part))
    chosen, missing = [], []
    for search_id in wanted[:12]:
        try:
            chosen.append(search_selectors.search_get(owner=request.user, search_id=search_id))
        except NotFoundError:
            missing.append(search_id)
    curves = []
    reference_from: set[int] = set()
    tables: dict[int, list[float]] = {}
    for search in chosen:
        curve = search_selectors.search_curve(search=search)
        # One random-search reference per space: the exact expected curve of its table (tabular only).
        wants_reference = search.evaluator_kind == SearchInstance.EvaluatorKind.TABULAR and \
            search.space_id not in reference_from
        if wants_reference:
            reference_from.add(search.space_id)
            tables[search.space_id] = _known_values(search)
        curves.append({**curve, "reference": wants_reference, "space": search.space.name,
                       "space_id": search.space_id, "n_candidates": search.space.n_encodings,
                       "dashboard": reverse("search-dashboard", args=[search.id])})
    return render(request, "frontend/search_compare.html", {
        "mine": mine, "chosen": chosen, "chosen_ids": {search.id for search in chosen}, "missing": missing,
        "curves": curves, "compare_tables": {str(space_id): values for space_id, values in tables.items()},
    })


KNOWN_VALUES_MAX = 200_000


def _known_values(search: SearchInstance) -> list[float]:
    """Every candidate's high-fidelity value of a tabular search, ascending (the regret and rank views of Compare
    measure against them); empty when the table cannot be read or is too big to send."""
    from searches import evaluators

    try:
        values = sorted(float(value) for value in evaluators.load_table(search)["hi"].values())
    except (OSError, DomainError, KeyError, ValueError):
        return []
    return values if len(values) <= KNOWN_VALUES_MAX else []
