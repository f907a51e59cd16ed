"""REST API of searches and evaluations: thin views over ``searches.services`` and ``searches.selectors``.

Each view parses its input with a nested ``InputSerializer``, calls one service or selector and
serialises with a nested ``OutputSerializer``. Someone else's search is "not found" (404), never 403.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from django.http import HttpResponse, StreamingHttpResponse
from django.utils.http import content_disposition_header
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from nasweb import safe_json
from nasweb.api import DownloadView, PagedView, error_responses, paginate
from nasweb.safe_json import BoundedJSONParser
from nasweb.uploads import read_module_upload, read_upload
from searches import evaluator_kinds, positions, selectors, services
from searches.models import Evaluation, SearchInstance
from searches.spec import DEFAULTS, SearchSpec
from spaces.api import MeanStdSerializer
from spaces.models import SearchSpace
from spaces.selectors import space_encodings, space_list
from spaces.services import load_encodings

CSV_BATCH_ROWS = 500


class FiniteFloatField(serializers.FloatField):
    """A float that must be finite: ``nan`` and ``inf`` are bad input, not values to filter by."""

    def to_internal_value(self, data: Any) -> float:
        number = super().to_internal_value(data)
        if not math.isfinite(number):
            raise serializers.ValidationError("must be a finite number")
        return number


@extend_schema_field({"type": "object", "additionalProperties": True})
class JSONObjectField(serializers.Field):
    """A JSON object, given as an object (JSON body) or as JSON text (a multipart form field)."""

    def to_internal_value(self, data: Any) -> dict:
        if isinstance(data, str):
            try:
                data = safe_json.loads(data) if data.strip() else {}
            except json.JSONDecodeError as exc:
                raise serializers.ValidationError(f"not valid JSON: {exc.msg} at line {exc.lineno}") from None
            except safe_json.JSONInputError as exc:
                raise serializers.ValidationError(str(exc)) from None
        if not isinstance(data, dict):
            raise serializers.ValidationError("must be a JSON object")
        return data

    def to_representation(self, value: Any) -> Any:
        return value


@extend_schema_field(OpenApiTypes.ANY)
class GoalsField(serializers.Field):
    """Objectives, constraints or a reference point as JSON data or as the form's text; :mod:`searches.spec`
    reads both and names the field of any mistake."""

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str | list | dict):
            raise serializers.ValidationError("give a JSON object or list, or text such as 'accuracy:max'")
        return data

    def to_representation(self, value: Any) -> Any:
        return value


@extend_schema_field({"type": "array", "items": {"type": "integer", "minimum": 0}})
class IndicesField(serializers.Field):
    """Encoding indices as a JSON list or as the form's text ``"12, 407"``; :mod:`searches.spec` checks them."""

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str | list):
            raise serializers.ValidationError("give a list of encoding indices, e.g. [12, 407]")
        return data

    def to_representation(self, value: Any) -> Any:
        return value


def _search(request: Request, search_id: int) -> SearchInstance:
    return selectors.search_get(owner=request.user, search_id=search_id)


def _evaluation(request: Request, search_id: int, evaluation_id: int) -> Evaluation:
    return selectors.evaluation_get(search=_search(request, search_id), evaluation_id=evaluation_id)


@extend_schema_serializer(component_name="Search")
class SearchOutputSerializer(serializers.ModelSerializer):
    """A search with its progress (also what the list, create and the actions answer)."""

    space_name = serializers.CharField(source="space.name", read_only=True)
    budget_fraction = serializers.FloatField(read_only=True)

    class Meta:
        model = SearchInstance
        fields = ["id", "name", "notes", "tags", "direction", "space", "space_name", "evaluator_kind",
                  "evaluator_config", "evaluator_sha256",
                  "hi_fi_cost", "lo_fi_cost", "budget", "spent", "budget_fraction", "parallelism", "seed",
                  "acquisition", "surrogate", "state", "failure_reason", "best_value", "best_index", "finished_count",
                  "created_at", "updated_at", "started_at", "ended_at", "objectives", "constraints",
                  "reference_point", "initial_candidates"]
        read_only_fields = fields


@extend_schema_serializer(component_name="Evaluation")
class EvaluationOutputSerializer(serializers.ModelSerializer):
    """One attempt of one candidate at one fidelity."""

    class Meta:
        model = Evaluation
        fields = ["id", "seq", "encoding_index", "fidelity", "attempt", "state", "value", "cost", "predicted_mean",
                  "predicted_std", "worker", "gpu", "queued_at", "started_at", "finished_at", "duration_s",
                  "spent_after", "best_after", "retried", "error", "objectives"]
        read_only_fields = fields


class SearchListApi(PagedView):
    """Your searches, newest first; or start one on a ready space of yours."""

    parser_classes = [BoundedJSONParser, MultiPartParser, FormParser]

    @extend_schema_serializer(component_name="SearchCreateInput")
    class InputSerializer(serializers.Serializer):
        space = serializers.PrimaryKeyRelatedField(
            queryset=SearchSpace.objects.none(), help_text="id of a ready search space of yours",
            error_messages={"does_not_exist": "no such search space", "incorrect_type": "must be a space id"})
        name = serializers.CharField(allow_blank=True, max_length=1000)
        evaluator_kind = serializers.ChoiceField(choices=evaluator_kinds.choices())
        budget = serializers.FloatField(help_text="in hi-fi evaluations; must be more than 0")
        evaluator_config = JSONObjectField(required=False, help_text=(
            "image_classification: dataset, n_classes, epochs_hi (epochs_lo), batch_size, gpus_per_eval, ...; "
            "tabular: delay_s. An object, or JSON text in a multipart form"))
        evaluator_module = serializers.FileField(required=False, help_text="module defining "
                                                 "evaluate(encoding, fidelity) -> float (evaluator_kind module)")
        evaluator_source = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False,
                                                 help_text="the evaluator module as text, instead of a file")
        evaluator_table = serializers.FileField(required=False, help_text="CSV with columns index, hi (and lo) "
                                                "(evaluator_kind tabular)")
        hi_fi_cost = serializers.FloatField(required=False, default=DEFAULTS["hi_fi_cost"])
        lo_fi_cost = serializers.FloatField(required=False, allow_null=True, default=DEFAULTS["lo_fi_cost"],
                                            help_text="set it to also evaluate at a low fidelity")
        parallelism = serializers.IntegerField(required=False, default=DEFAULTS["parallelism"],
                                               help_text="evaluations in flight")
        seed = serializers.IntegerField(required=False, default=DEFAULTS["seed"])
        acquisition = serializers.ChoiceField(required=False, default=DEFAULTS["acquisition"],
                                              choices=SearchInstance.Acquisition.choices)
        surrogate = serializers.ChoiceField(required=False, default=DEFAULTS["surrogate"],
                                            choices=SearchInstance.Surrogate.choices,
                                            help_text="what the engine fits to the results: gp (faster at choosing) "
                                                      "or ensemble (the space's pretrained ensemble, fine-tuned)")
        direction = serializers.ChoiceField(required=False, default=DEFAULTS["direction"],
                                            choices=SearchInstance.Direction.choices,
                                            help_text="maximize: higher values are better; minimize: lower ones")
        objectives = GoalsField(required=False, default=list, help_text=(
            "several objectives, the first primary: {\"accuracy\": \"max\", \"latency\": \"min\"}, "
            "[[name, direction], ...] or the text 'accuracy:max, latency:min'; the evaluator then returns a dict, "
            "and names that are space metrics (profiled or uploaded latencies) are read from the profile"))
        constraints = GoalsField(required=False, default=list, help_text=(
            "{\"latency\": [\"<=\", 0.005]}, [{name, op, bound}, ...] or the text 'latency <= 0.005; params <= 2e6', "
            "on space metrics or values the evaluator returns"))
        reference_point = GoalsField(required=False, default=dict, help_text=(
            "{objective: value} bounding the hypervolume, or the text 'accuracy=0.5, latency=0.02'; "
            "missing ones are computed (the worst over the space or the results, minus 10% of the range)"))
        initial_candidates = IndicesField(required=False, default=None, help_text=(
            "encoding indices evaluated first, in this order (e.g. the architectures you run today); default: "
            "the best results of the searches this space was pretrained on, else none"))

        def __init__(self, *args: Any, owner: Any = None, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.fields["space"].queryset = space_list(owner=owner)
            self.fields["evaluator_kind"].choices = evaluator_kinds.choices()  # kinds registered after import too

        def validate(self, data: dict[str, Any]) -> dict[str, Any]:
            """``space`` and the :class:`SearchSpec` (uploads read here; the service checks the rest)."""
            module = data.pop("evaluator_module", None)
            table = data.pop("evaluator_table", None)
            space = data.pop("space")
            return {"space": space, "spec": SearchSpec(
                **data,
                evaluator_module=None if module is None else read_module_upload(module, field="evaluator_module"),
                evaluator_table=None if table is None else read_upload(table, field="evaluator_table", text=False),
            )}

    @extend_schema(responses={200: SearchOutputSerializer(many=True), **error_responses(400)})
    def get(self, request: Request) -> Response:
        """Your searches, newest first."""
        paginator, page = paginate(self, request, selectors.search_list(owner=request.user))
        return paginator.get_paginated_response(SearchOutputSerializer(page, many=True).data)

    @extend_schema(request={"application/json": InputSerializer, "multipart/form-data": InputSerializer},
                   responses={201: SearchOutputSerializer, **error_responses(400)})
    def post(self, request: Request) -> Response:
        """Start a search on a ready space of yours (JSON, or multipart to upload an evaluator module or table)."""
        serializer = self.InputSerializer(data=request.data, owner=request.user)
        serializer.is_valid(raise_exception=True)
        search = services.search_create(owner=request.user, **serializer.validated_data)
        return Response(SearchOutputSerializer(search).data, status=status.HTTP_201_CREATED)


class SearchDetailApi(APIView):
    """One search; rename it or change its notes and tags; delete it once it has ended (finished,
    cancelled or failed)."""

    @extend_schema_serializer(component_name="SearchAnnotateInput")
    class AnnotateSerializer(serializers.Serializer):
        name = serializers.CharField(required=False, allow_blank=True, max_length=1000)
        notes = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False, max_length=100_000)
        tags = serializers.ListField(child=serializers.CharField(allow_blank=True, max_length=1000), required=False,
                                     max_length=1000, help_text="the whole new list of tags")

    @extend_schema(request=AnnotateSerializer, responses={200: SearchOutputSerializer, **error_responses(400, 404)})
    def patch(self, request: Request, search_id: int) -> Response:
        """Rename the search or change its notes or tags (only the fields given)."""
        search = _search(request, search_id)
        serializer = self.AnnotateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        search = services.search_annotate(search=search, **serializer.validated_data)
        return Response(SearchOutputSerializer(search).data)

    @extend_schema(responses={200: SearchOutputSerializer, **error_responses(404)})
    def get(self, request: Request, search_id: int) -> Response:
        """One search with its figures."""
        return Response(SearchOutputSerializer(_search(request, search_id)).data)

    @extend_schema(responses={204: None, **error_responses(404, 409)})
    def delete(self, request: Request, search_id: int) -> Response:
        """Delete an ended search and its files (409 while it is queued, running or paused)."""
        services.search_delete(search=_search(request, search_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class _SearchActionApi(APIView):
    service: Callable[..., SearchInstance]

    @extend_schema(request=None, responses={200: SearchOutputSerializer, **error_responses(404, 409)})
    def post(self, request: Request, search_id: int) -> Response:
        search = type(self).service(search=_search(request, search_id))
        return Response(SearchOutputSerializer(search).data)


class SearchPauseApi(_SearchActionApi):
    """Pause: no new proposals; the evaluations in flight finish and count."""

    service = staticmethod(services.search_pause)


class SearchResumeApi(_SearchActionApi):
    """Resume a paused search from its stored state."""

    service = staticmethod(services.search_resume)


class SearchCancelApi(_SearchActionApi):
    """Cancel: queued evaluations are dropped, running ones are stopped."""

    service = staticmethod(services.search_cancel)


class SearchExtendApi(APIView):
    """Raise the budget of a search; a finished search goes back to running and spends the rest."""

    @extend_schema_serializer(component_name="SearchExtendInput")
    class InputSerializer(serializers.Serializer):
        budget = serializers.FloatField(help_text="the new total budget in hi-fi evaluations; more than the current")

    @extend_schema(request=InputSerializer, responses={200: SearchOutputSerializer, **error_responses(400, 404, 409)})
    def post(self, request: Request, search_id: int) -> Response:
        search = _search(request, search_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        search = services.search_extend_budget(search=search, budget=serializer.validated_data["budget"])
        return Response(SearchOutputSerializer(search).data)


class SearchRetryFailedApi(APIView):
    """Run every failed evaluation again (running, paused or finished searches; a finished one runs again)."""

    @extend_schema(request=None, responses={201: EvaluationOutputSerializer(many=True),
                                            **error_responses(404, 409)})
    def post(self, request: Request, search_id: int) -> Response:
        retries = services.search_retry_failed(search=_search(request, search_id))
        return Response(EvaluationOutputSerializer(retries, many=True).data, status=status.HTTP_201_CREATED)


class SearchCloneApi(APIView):
    """Start a new search with this one's settings (space, evaluator with its module or table, costs,
    budget, seed, ...), changing the fields given."""

    @extend_schema_serializer(component_name="SearchCloneInput")
    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(required=False, allow_blank=True, max_length=1000,
                                     help_text="default: the original's name with (copy)")
        budget = serializers.FloatField(required=False)
        seed = serializers.IntegerField(required=False)
        parallelism = serializers.IntegerField(required=False)
        acquisition = serializers.ChoiceField(required=False, choices=SearchInstance.Acquisition.choices)
        surrogate = serializers.ChoiceField(required=False, choices=SearchInstance.Surrogate.choices)
        direction = serializers.ChoiceField(required=False, choices=SearchInstance.Direction.choices)
        evaluator_config = JSONObjectField(required=False)
        initial_candidates = IndicesField(required=False, help_text="default: the original's")

    @extend_schema(request=InputSerializer, responses={201: SearchOutputSerializer, **error_responses(400, 404)})
    def post(self, request: Request, search_id: int) -> Response:
        search = _search(request, search_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        clone = services.search_clone(search=search, owner=request.user, **serializer.validated_data)
        return Response(SearchOutputSerializer(clone).data, status=status.HTTP_201_CREATED)


class SearchPositionsApi(APIView):
    """Per encoding position: the evaluated points (parallel coordinates), the best and mean value per
    level (slice plots) and the position's importance (share of the value's variance it explains alone)."""

    @extend_schema_serializer(component_name="PositionsQuery")
    class InputSerializer(serializers.Serializer):
        fidelity = serializers.ChoiceField(required=False, default="hi", choices=Evaluation.Fidelity.choices)

    @extend_schema_serializer(component_name="SearchPositions")
    class OutputSerializer(serializers.Serializer):
        search = serializers.IntegerField()
        fidelity = serializers.CharField()
        direction = serializers.CharField()
        points = serializers.ListField(child=serializers.DictField(), help_text=(
            "index, encoding, value, seq of each finished evaluation at this fidelity (the latest 5000)"))
        positions = serializers.ListField(child=serializers.DictField(), help_text=(
            "position, kind (numeric or categorical), levels, slices [{level, count, best, mean}], importance"))

    @extend_schema(parameters=[InputSerializer], responses={200: OutputSerializer, **error_responses(400, 404)})
    def get(self, request: Request, search_id: int) -> Response:
        search = _search(request, search_id)
        query = self.InputSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = positions.search_positions(search=search, fidelity=query.validated_data["fidelity"])
        return Response(self.OutputSerializer(data).data)


class SearchProgressApi(APIView):
    """What the live dashboard polls: the search's figures, evaluations finished after ``cursor``
    (the last ``seq`` seen; at most 2000 per call, ``more`` says if there are others) and those in flight."""

    @extend_schema_serializer(component_name="ProgressQuery")
    class InputSerializer(serializers.Serializer):
        cursor = serializers.IntegerField(required=False, default=0, min_value=0, max_value=2**31 - 1)

    @extend_schema_serializer(component_name="SearchProgress")
    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        state = serializers.CharField()
        failure_reason = serializers.CharField(allow_blank=True)
        budget = serializers.FloatField()
        spent = serializers.FloatField()
        best_value = serializers.FloatField(allow_null=True)
        best_index = serializers.IntegerField(allow_null=True)
        best_encoding = serializers.ListField(child=serializers.JSONField(), allow_null=True,
                                              help_text="the best candidate's encoding")
        finished_count = serializers.IntegerField()
        cursor = serializers.IntegerField(help_text="pass it back as ?cursor= on the next poll")
        more = serializers.BooleanField()
        finished = serializers.ListField(child=serializers.DictField(), help_text=(
            "id, seq, encoding_index, encoding, fidelity, state, value, cost, spent_after, best_after, finished_at, "
            "attempt"))
        running_limit = serializers.IntegerField(allow_null=True, help_text=(
            "most evaluations one user may have running at once on this server (null: no limit)"))
        in_flight = serializers.ListField(child=serializers.DictField(), help_text=(
            "id, encoding_index, encoding, fidelity, state, attempt, gpu, worker, started_at, log_tail, "
            "predicted_mean, predicted_std; a queued one also has ahead: how many evaluations (of every user) "
            "start before it in the fair order, or null while the owner's running limit holds it"))

    @extend_schema(parameters=[InputSerializer], responses={200: OutputSerializer, **error_responses(400, 404)})
    def get(self, request: Request, search_id: int) -> Response:
        search = _search(request, search_id)
        query = self.InputSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        progress = selectors.search_progress(search=search, cursor=query.validated_data["cursor"])
        return Response(self.OutputSerializer(progress).data)


@extend_schema_serializer(component_name="Curve")
class CurveSerializer(serializers.Serializer):
    evaluations = serializers.ListField(child=serializers.IntegerField(), help_text="finish order (seq)")
    spent = serializers.ListField(child=serializers.FloatField(allow_null=True), help_text="budget spent then")
    best = serializers.ListField(child=serializers.FloatField(), help_text="best value so far")
    value = serializers.ListField(child=serializers.FloatField(), help_text="this evaluation's value")
    index = serializers.ListField(child=serializers.IntegerField())
    elapsed_s = serializers.ListField(child=serializers.FloatField(allow_null=True),
                                      help_text="seconds from the search's start to this evaluation's end (wall clock)")


class SearchCurveApi(APIView):
    """Best value so far per fidelity, against evaluations finished and budget spent (plot data)."""

    @extend_schema_serializer(component_name="SearchCurves")
    class OutputSerializer(serializers.Serializer):
        search = serializers.IntegerField()
        name = serializers.CharField()
        budget = serializers.FloatField()
        direction = serializers.CharField(help_text="maximize or minimize: which values are better")
        started_at = serializers.DateTimeField(allow_null=True)
        curves = serializers.DictField(child=CurveSerializer(), help_text="fidelity (hi, lo) -> curve")

    @extend_schema(responses={200: OutputSerializer, **error_responses(404)})
    def get(self, request: Request, search_id: int) -> Response:
        return Response(self.OutputSerializer(selectors.search_curve(search=_search(request, search_id))).data)


class SearchReferenceCurveApi(APIView):
    """The exact expected best value of random search with the same budget (tabular evaluators
    only, which know every candidate's value; 409 otherwise)."""

    @extend_schema_serializer(component_name="ReferenceCurve")
    class OutputSerializer(serializers.Serializer):
        search = serializers.IntegerField()
        n_candidates = serializers.IntegerField()
        evaluations = serializers.ListField(child=serializers.IntegerField())
        best = serializers.ListField(child=serializers.FloatField(), help_text="expected best after k evaluations")

    @extend_schema(responses={200: OutputSerializer, **error_responses(404, 409)})
    def get(self, request: Request, search_id: int) -> Response:
        curve = selectors.search_reference_curve(search=_search(request, search_id))
        return Response(self.OutputSerializer(curve).data)


@extend_schema_serializer(component_name="ParetoPoint")
class ParetoPointSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    value = serializers.FloatField()
    metric_value = serializers.FloatField()
    non_dominated = serializers.BooleanField(help_text="no other point has a higher value at a lower-or-equal metric")


class SearchParetoApi(APIView):
    """Evaluated hi-fi values against a profiled metric (params by default), with the
    non-dominated candidates (higher value, lower metric) flagged."""

    @extend_schema_serializer(component_name="ParetoQuery")
    class InputSerializer(serializers.Serializer):
        metric = serializers.CharField(required=False, default="params", max_length=100)

    @extend_schema_serializer(component_name="Pareto")
    class OutputSerializer(serializers.Serializer):
        search = serializers.IntegerField()
        metric = serializers.CharField()
        points = ParetoPointSerializer(many=True)
        unprofiled = serializers.IntegerField(help_text="evaluated candidates without a profiled value")

    @extend_schema(parameters=[InputSerializer], responses={200: OutputSerializer, **error_responses(400, 404)})
    def get(self, request: Request, search_id: int) -> Response:
        search = _search(request, search_id)
        query = self.InputSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        pareto = selectors.search_pareto(search=search, metric=query.validated_data["metric"])
        return Response(self.OutputSerializer(pareto).data)


class SearchHypervolumeApi(APIView):
    """A search with objectives: the dominated hypervolume after every finished evaluation, the feasible
    Pareto front found so far and every evaluated point."""

    @extend_schema(responses={200: OpenApiTypes.OBJECT, **error_responses(404, 409)})
    def get(self, request: Request, search_id: int) -> Response:
        return Response(selectors.search_hypervolume(search=_search(request, search_id)))


class EvaluationListApi(PagedView):
    """The search's evaluations, a page at a time, filtered and sorted."""

    @extend_schema_serializer(component_name="EvaluationQuery")
    class InputSerializer(serializers.Serializer):
        state = serializers.ChoiceField(required=False, choices=Evaluation.State.choices)
        fidelity = serializers.ChoiceField(required=False, choices=Evaluation.Fidelity.choices)
        value_min = FiniteFloatField(required=False)
        value_max = FiniteFloatField(required=False)
        ordering = serializers.ChoiceField(required=False, default="id", choices=sorted(selectors.ORDERINGS),
                                           help_text="a field, descending with a leading minus")

        def validate(self, data: dict[str, Any]) -> dict[str, Any]:
            if "value_min" in data and "value_max" in data and data["value_min"] > data["value_max"]:
                raise serializers.ValidationError({"value_max": "must be at least value_min"})
            return data

    @extend_schema(parameters=[InputSerializer],
                   responses={200: EvaluationOutputSerializer(many=True), **error_responses(400, 404)})
    def get(self, request: Request, search_id: int) -> Response:
        search = _search(request, search_id)
        query = self.InputSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        evaluations = selectors.evaluation_list(search=search, **query.validated_data).defer("log_tail")
        paginator, page = paginate(self, request, evaluations)
        return paginator.get_paginated_response(EvaluationOutputSerializer(page, many=True).data)


class EvaluationDetailApi(APIView):
    """One evaluation with its encoding and the tail of its log."""

    @extend_schema_serializer(component_name="EvaluationDetail")
    class OutputSerializer(EvaluationOutputSerializer):
        encoding = serializers.SerializerMethodField()

        class Meta(EvaluationOutputSerializer.Meta):
            fields = [*EvaluationOutputSerializer.Meta.fields, "encoding", "log_tail"]
            read_only_fields = fields

        @extend_schema_field({"type": "array", "items": {}})
        def get_encoding(self, evaluation: Evaluation) -> list:
            return space_encodings(space=evaluation.search.space, indices=[evaluation.encoding_index])[0]["encoding"]

    @extend_schema(responses={200: OutputSerializer, **error_responses(404)})
    def get(self, request: Request, search_id: int, evaluation_id: int) -> Response:
        return Response(self.OutputSerializer(_evaluation(request, search_id, evaluation_id)).data)


class EvaluationLogApi(DownloadView):
    """The evaluation's whole log as plain text."""

    @extend_schema(responses={(200, "text/plain"): OpenApiTypes.STR, **error_responses(404)})
    def get(self, request: Request, search_id: int, evaluation_id: int) -> HttpResponse:
        log = services.evaluation_log(_evaluation(request, search_id, evaluation_id))
        return HttpResponse(log, content_type="text/plain; charset=utf-8")


class EvaluationRetryApi(APIView):
    """Run a failed evaluation again as a new attempt (the search must be running or paused)."""

    @extend_schema(request=None, responses={201: EvaluationOutputSerializer, **error_responses(404, 409)})
    def post(self, request: Request, search_id: int, evaluation_id: int) -> Response:
        retry = services.evaluation_retry(evaluation=_evaluation(request, search_id, evaluation_id))
        return Response(EvaluationOutputSerializer(retry).data, status=status.HTTP_201_CREATED)


class _Echo:
    """A file-like object whose ``write`` hands the text back (csv.writer into a stream)."""

    def write(self, value: str) -> str:
        return value


def _csv_text(rows: Iterable[list[Any]]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    batch: list[str] = []
    for row in rows:
        batch.append(writer.writerow(row))
        if len(batch) >= CSV_BATCH_ROWS:
            yield "".join(batch)
            batch = []
    if batch:
        yield "".join(batch)


class EvaluationCsvApi(DownloadView):
    """Every evaluation of the search as CSV, streamed (header first, creation order)."""

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.STR, **error_responses(404)})
    def get(self, request: Request, search_id: int) -> StreamingHttpResponse:
        search = _search(request, search_id)
        rows = selectors.evaluation_csv_rows(search=search, encodings=load_encodings(search.space))
        response = StreamingHttpResponse(_csv_text(rows), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = content_disposition_header(True, f"{search.name}-evaluations.csv")
        return response


class SearchPredictionsApi(PagedView):
    """The search's surrogate (fitted to the evaluations so far) for a page of candidates:
    mean and std of the objective per fidelity."""

    @extend_schema_serializer(component_name="SearchPrediction")
    class OutputSerializer(serializers.Serializer):
        index = serializers.IntegerField()
        encoding = serializers.JSONField()
        predictions = serializers.DictField(child=MeanStdSerializer(), help_text="name -> {mean, std}")

    @extend_schema(responses={200: OutputSerializer(many=True), **error_responses(400, 404, 409)})
    def get(self, request: Request, search_id: int) -> Response:
        search = _search(request, search_id)
        paginator, page = paginate(self, request, range(search.space.n_encodings))
        rows = selectors.search_predictions(search=search, indices=page)
        return paginator.get_paginated_response(self.OutputSerializer(rows, many=True).data)
