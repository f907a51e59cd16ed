"""REST API of search spaces: thin views over ``spaces.services`` and ``spaces.selectors``.

Each view parses its input with a nested ``InputSerializer``, calls one service or selector and
serialises with a nested ``OutputSerializer``. Someone else's space is "not found" (404), never 403.
"""

from __future__ import annotations

import json
from typing import Any

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from nasweb import safe_json
from nasweb.api import DownloadView, PagedView, error_responses, paginate
from nasweb.errors import ConflictError
from nasweb.safe_json import BoundedJSONParser
from nasweb.uploads import read_module_upload, read_upload
from spaces import examples, selectors, services
from spaces.models import NetworkSummary, SearchSpace

UPLOAD_PARSERS = [MultiPartParser, FormParser, BoundedJSONParser]


@extend_schema_field({"oneOf": [{"type": "string", "example": "1,3,32,32"},
                                {"type": "array", "items": {"type": "integer"}, "example": [1, 3, 32, 32]}]})
class ShapeField(serializers.Field):
    """A tensor shape written ``"1,3,32,32"``, as JSON text ``"[1, 3, 32, 32]"`` or as a JSON list."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, str) and data.strip().startswith("["):
            try:
                data = safe_json.loads(data)
            except (json.JSONDecodeError, safe_json.JSONInputError):
                raise serializers.ValidationError("write the shape as integers, e.g. 1,3,32,32") from None
        if not isinstance(data, str | list):
            raise serializers.ValidationError("write the shape as integers, e.g. 1,3,32,32")
        return data  # the service checks the dimensions (the web form shares that check)

    def to_representation(self, value: Any) -> Any:
        return value


def _space(request: Request, space_id: int) -> SearchSpace:
    return selectors.space_get(owner=request.user, space_id=space_id)


@extend_schema_serializer(component_name="Space")
class SpaceOutputSerializer(serializers.ModelSerializer):
    """A search space with its progress (also what the list, create and detail answer)."""

    progress_fraction = serializers.FloatField(read_only=True)
    has_bundle = serializers.SerializerMethodField()

    class Meta:
        model = SearchSpace
        fields = ["id", "name", "description", "tags", "source", "example", "state", "failure_reason", "n_encodings",
                  "encoding_length", "feature_summary", "module_sha256", "sample_input_shape", "max_profiled",
                  "progress_done", "progress_total", "progress_fraction", "metrics", "profile_failures",
                  "surrogate_quality", "transfers", "has_bundle", "created_at", "updated_at"]
        read_only_fields = fields

    def get_has_bundle(self, space: SearchSpace) -> bool:
        return bool(space.bundle_file)


@extend_schema_field({"type": "array", "items": {"type": "string"}})
class PositionTypesField(serializers.Field):
    """Position types as a list of names, or as one comma-separated text (a multipart form field)."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, str) or (isinstance(data, list) and all(isinstance(item, str) for item in data)):
            return data
        raise serializers.ValidationError("give a list of position types or one comma-separated text")

    def to_representation(self, value: Any) -> Any:
        return value


class SpaceListApi(PagedView):
    """Your search spaces, newest first; or create one from an upload, an example or a bundle."""

    parser_classes = UPLOAD_PARSERS

    @extend_schema_serializer(component_name="SpaceCreateInput")
    class InputSerializer(serializers.Serializer):
        """Exactly one of: ``encodings`` + (``module`` or ``module_source``) + ``sample_input_shape``;
        ``example``; ``bundle``."""

        name = serializers.CharField(required=False, allow_blank=True, max_length=1000,
                                     help_text="required for an upload; defaults to the example's or bundle's name")
        description = serializers.CharField(required=False, allow_blank=True, max_length=10_000)
        encodings = serializers.FileField(required=False, help_text="JSON list of lists (or CSV), one per candidate")
        module = serializers.FileField(required=False, help_text="Python module defining encoding_to_net(encoding)")
        module_source = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False,
                                              help_text="the module as text, instead of a file")
        sample_input_shape = ShapeField(required=False)
        max_profiled = serializers.IntegerField(required=False, allow_null=True, min_value=1,
                                                help_text="profile a seeded random subset of this size")
        example = serializers.ChoiceField(required=False, choices=list(examples.NAMES))
        bundle = serializers.FileField(required=False, help_text="a .nastune bundle file (checksums verified)")
        position_types = PositionTypesField(required=False, help_text=(
            "upload only: one of infer, categorical, ordinal, numeric, log per position (a list, or comma-separated "
            "text); infer lets the engine decide, as it does for every position when this is omitted"))

        def validate(self, data: dict[str, Any]) -> dict[str, Any]:
            modes = [mode for mode in ("encodings", "example", "bundle") if data.get(mode) is not None]
            if len(modes) != 1:
                raise serializers.ValidationError(
                    {"encodings": "give exactly one of: an encodings file (with a module), an example, a bundle"})
            if modes == ["encodings"]:
                if data.get("module") is not None and data.get("module_source"):
                    raise serializers.ValidationError({"module": "give either a module file or module_source"})
                if data.get("module") is not None:
                    data["module_source"] = read_module_upload(data["module"], field="module")
                if not data.get("module_source"):
                    raise serializers.ValidationError({"module": "upload the module defining encoding_to_net"})
                if data.get("sample_input_shape") is None:
                    raise serializers.ValidationError({"sample_input_shape": "give the sample input's shape, "
                                                                             "e.g. 1,3,32,32"})
            data["mode"] = modes[0]
            return data

    @extend_schema(responses={200: SpaceOutputSerializer(many=True), **error_responses(400)})
    def get(self, request: Request) -> Response:
        """Your search spaces, newest first."""
        paginator, page = paginate(self, request, selectors.space_list(owner=request.user))
        return paginator.get_paginated_response(SpaceOutputSerializer(page, many=True).data)

    @extend_schema(request={"multipart/form-data": InputSerializer, "application/json": InputSerializer},
                   responses={201: SpaceOutputSerializer, **error_responses(400)})
    def post(self, request: Request) -> Response:
        """Create a search space: upload encodings and an `encoding_to_net` module (validation,
        profiling and pretraining follow in workers), pick an example, or import a bundle (ready at once)."""
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if data["mode"] == "example":
            space = services.space_create_from_example(
                owner=request.user, example=data["example"], name=data.get("name", ""),
                description=data.get("description", ""), max_profiled=data.get("max_profiled"))
        elif data["mode"] == "bundle":
            space = services.space_import_bundle(owner=request.user, bundle_upload=data["bundle"],
                                                 name=data.get("name", ""))
        else:
            space = services.space_create(
                owner=request.user, name=data.get("name", ""), encodings_upload=data["encodings"],
                module_source=data["module_source"], sample_input_shape=data["sample_input_shape"],
                description=data.get("description", ""), max_profiled=data.get("max_profiled"),
                position_types=data.get("position_types"))
        return Response(SpaceOutputSerializer(space).data, status=status.HTTP_201_CREATED)


class SpaceInferPositionsApi(APIView):
    """What the engine infers for each position of an encodings file, before a space is created (nothing is
    stored): position type (categorical, numeric or log), feature kind, values or range."""

    parser_classes = [MultiPartParser, FormParser]

    @extend_schema_serializer(component_name="InferPositionsInput")
    class InputSerializer(serializers.Serializer):
        encodings = serializers.FileField(help_text="JSON list of lists (or CSV), one per candidate")

    @extend_schema(request={"multipart/form-data": InputSerializer},
                   responses={200: serializers.ListField(child=serializers.DictField()), **error_responses(400)})
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(services.space_infer_positions(encodings_upload=serializer.validated_data["encodings"]))


class SpaceDetailApi(APIView):
    """One search space with its progress; rename it or change its description and tags; delete it
    (refused while a search on it is active)."""

    @extend_schema_serializer(component_name="SpaceAnnotateInput")
    class AnnotateSerializer(serializers.Serializer):
        name = serializers.CharField(required=False, allow_blank=True, max_length=1000)
        description = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False,
                                            max_length=100_000, help_text="the space's notes")
        tags = serializers.ListField(child=serializers.CharField(allow_blank=True, max_length=1000), required=False,
                                     max_length=1000, help_text="the whole new list of tags")

    @extend_schema(request=AnnotateSerializer, responses={200: SpaceOutputSerializer, **error_responses(400, 404)})
    def patch(self, request: Request, space_id: int) -> Response:
        """Rename the space or change its description or tags (only the fields given)."""
        space = _space(request, space_id)
        serializer = self.AnnotateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(SpaceOutputSerializer(services.space_annotate(space=space, **serializer.validated_data)).data)

    @extend_schema(responses={200: SpaceOutputSerializer, **error_responses(404)})
    def get(self, request: Request, space_id: int) -> Response:
        """One search space with its progress."""
        return Response(SpaceOutputSerializer(_space(request, space_id)).data)

    @extend_schema(responses={204: None, **error_responses(404, 409)})
    def delete(self, request: Request, space_id: int) -> Response:
        """Delete the space, its files and its ended searches (409 while a search on it is active)."""
        services.space_delete(space=_space(request, space_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class SpaceResultsApi(APIView):
    """Transfer: pretrain the space again with the results of one of its searches as a sparse target."""

    class InputSerializer(serializers.Serializer):
        search = serializers.IntegerField(help_text="id of a search on this space with high-fidelity results")
        name = serializers.CharField(required=False, allow_blank=True, max_length=64,
                                     help_text="name of the new pretraining target (default search_<id>)")

    @extend_schema(request=InputSerializer, responses={202: SpaceOutputSerializer, **error_responses(400, 404, 409)})
    def post(self, request: Request, space_id: int) -> Response:
        """Add a finished search's high-fidelity results to the space and pretrain again (the space is
        ``pretraining`` until a worker is done; searches started afterwards learn from those results)."""
        from searches import selectors as search_selectors

        space = _space(request, space_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        search = search_selectors.search_get(owner=request.user, search_id=serializer.validated_data["search"])
        space = services.space_add_search_results(space=space, search=search,
                                                  name=serializer.validated_data.get("name", ""))
        return Response(SpaceOutputSerializer(space).data, status=status.HTTP_202_ACCEPTED)


class SpaceDeviceLatenciesApi(APIView):
    """Latencies measured on your own target device for some encodings; the surrogate learns the rest."""

    parser_classes = [MultiPartParser, FormParser]

    class InputSerializer(serializers.Serializer):
        device = serializers.CharField(max_length=64, help_text="the device's name, e.g. pixel-7: the metric is "
                                       "latency_<device>, usable in constraints and objectives")
        file = serializers.FileField(help_text="CSV with a header: index (or encoding) and latency (seconds); "
                                     "at least 30 rows")

    @extend_schema(request={"multipart/form-data": InputSerializer},
                   responses={202: SpaceOutputSerializer, **error_responses(400, 404, 409)})
    def post(self, request: Request, space_id: int) -> Response:
        """Store them as ``latency_<device>`` and pretrain again (the space is ``pretraining`` until a worker is
        done); a bad row is a 400 that names it."""
        space = _space(request, space_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = read_upload(serializer.validated_data["file"], field="file", text=False)
        space = services.space_add_device_latencies(space=space, device=serializer.validated_data["device"],
                                                    data=data)
        return Response(SpaceOutputSerializer(space).data, status=status.HTTP_202_ACCEPTED)


class SpaceBundleApi(DownloadView):
    """Download the space's bundle, ``<name>.nastune`` (only once the space is ready)."""

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY, **error_responses(404, 409)})
    def get(self, request: Request, space_id: int) -> FileResponse:
        space = _space(request, space_id)
        if space.state != SearchSpace.State.READY or not space.bundle_file:
            raise ConflictError(None, f"the search space is {space.state}; its bundle exists once it is ready")
        return FileResponse(services.space_bundle_file(space=space), as_attachment=True,
                            filename=f"{space.name}.nastune", content_type="application/octet-stream")


class SpaceModuleApi(APIView):
    """The space's ``encoding_to_net`` module source and its sha256 (read it before running it)."""

    @extend_schema_serializer(component_name="SpaceModule")
    class OutputSerializer(serializers.Serializer):
        source = serializers.CharField(source="module_source")
        sha256 = serializers.CharField(source="module_sha256")

    @extend_schema(responses={200: OutputSerializer, **error_responses(404)})
    def get(self, request: Request, space_id: int) -> Response:
        return Response(self.OutputSerializer(_space(request, space_id)).data)


class SpaceProfileApi(APIView):
    """A seeded sample of the profiled candidates: their indices and every profiled metric."""

    @extend_schema_serializer(component_name="SpaceProfileQuery")
    class InputSerializer(serializers.Serializer):
        max_points = serializers.IntegerField(required=False, default=5000, min_value=1, max_value=50_000)

    @extend_schema_serializer(component_name="SpaceProfile")
    class OutputSerializer(serializers.Serializer):
        indices = serializers.ListField(child=serializers.IntegerField())
        metrics = serializers.DictField(child=serializers.ListField(child=serializers.FloatField(allow_null=True)),
                                        help_text="metric -> one value per index (null where unknown)")
        failures = serializers.IntegerField(help_text="candidates whose profiling failed")

    @extend_schema(parameters=[InputSerializer], responses={200: OutputSerializer, **error_responses(400, 404)})
    def get(self, request: Request, space_id: int) -> Response:
        space = _space(request, space_id)
        query = self.InputSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        points = selectors.space_profile_points(space=space, max_points=query.validated_data["max_points"])
        return Response(self.OutputSerializer(points).data)


class SpaceEncodingsApi(PagedView):
    """The space's encodings, a page at a time, in index order."""

    @extend_schema_serializer(component_name="SpaceEncoding")
    class OutputSerializer(serializers.Serializer):
        index = serializers.IntegerField()
        encoding = serializers.JSONField(help_text="the encoding as uploaded: a list of JSON scalars")

    @extend_schema(responses={200: OutputSerializer(many=True), **error_responses(400, 404)})
    def get(self, request: Request, space_id: int) -> Response:
        space = _space(request, space_id)
        paginator, page = paginate(self, request, range(space.n_encodings))
        rows = selectors.space_encodings(space=space, indices=page)
        return paginator.get_paginated_response(self.OutputSerializer(rows, many=True).data)


@extend_schema_serializer(component_name="MeanStd")
class MeanStdSerializer(serializers.Serializer):
    """A surrogate's belief about one number: mean and standard deviation (null if not finite)."""

    mean = serializers.FloatField(allow_null=True)
    std = serializers.FloatField(allow_null=True)


class SpacePredictionsApi(PagedView):
    """What the pretrained surrogate predicts (mean and std per metric) for a page of candidates."""

    @extend_schema_serializer(component_name="SpacePrediction")
    class OutputSerializer(serializers.Serializer):
        index = serializers.IntegerField()
        encoding = serializers.JSONField()
        metrics = serializers.DictField(child=MeanStdSerializer(), help_text="metric -> {mean, std}")

    @extend_schema(responses={200: OutputSerializer(many=True), **error_responses(400, 404, 409)})
    def get(self, request: Request, space_id: int) -> Response:
        space = _space(request, space_id)
        paginator, page = paginate(self, request, range(space.n_encodings))
        rows = selectors.space_predictions(space=space, indices=page)
        return paginator.get_paginated_response(self.OutputSerializer(rows, many=True).data)


class NetworkSummaryApi(APIView):
    """POST asks a worker to build one candidate's network and describe it; GET reads the result
    (``state`` pending until the worker is done). The web process never builds user networks."""

    @extend_schema_serializer(component_name="NetworkSummary")
    class OutputSerializer(serializers.ModelSerializer):
        class Meta:
            model = NetworkSummary
            fields = ["encoding_index", "state", "text", "params", "params_test", "error", "requested_at",
                      "finished_at"]
            read_only_fields = fields

    @extend_schema(responses={200: OutputSerializer, **error_responses(404)})
    def get(self, request: Request, space_id: int, encoding_index: int) -> Response:
        """The network summary of one candidate (state pending until a worker built it)."""
        summary = selectors.network_summary_get(space=_space(request, space_id), encoding_index=encoding_index)
        return Response(self.OutputSerializer(summary).data)

    @extend_schema(request=None, responses={202: OutputSerializer, **error_responses(400, 404)})
    def post(self, request: Request, space_id: int, encoding_index: int) -> Response:
        """Ask a worker to build this candidate's network and describe it."""
        summary = services.network_summary_request(space=_space(request, space_id), encoding_index=encoding_index)
        return Response(self.OutputSerializer(summary).data, status=status.HTTP_202_ACCEPTED)

