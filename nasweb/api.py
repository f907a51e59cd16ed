"""Building blocks shared by the REST API of every app: pagination, the error schema, the token
endpoint, and the file-download base view. The views themselves live in ``<app>/api.py``."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from nasweb.safe_json import BoundedJSONParser

MAX_PAGE_SIZE = 500


class Pagination(PageNumberPagination):
    """``?page=`` (from 1) and ``?page_size=`` (1 to 500, default 50). A page that does not exist
    or a malformed number is bad input: HTTP 400 naming the parameter, not a silent default."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        try:
            size = int(raw)
        except ValueError:
            raise ValidationError({"page_size": "must be an integer"}) from None
        if not 1 <= size <= self.max_page_size:
            raise ValidationError({"page_size": f"must be from 1 to {self.max_page_size}"})
        return size

    def get_schema_operation_parameters(self, view: APIView) -> list[dict[str, Any]]:
        return [
            {"name": self.page_query_param, "required": False, "in": "query",
             "description": "page number, from 1", "schema": {"type": "integer", "minimum": 1}},
            {"name": self.page_size_query_param, "required": False, "in": "query",
             "description": f"results per page (default {self.page_size})",
             "schema": {"type": "integer", "minimum": 1, "maximum": self.max_page_size}},
        ]

    def paginate_queryset(self, queryset: Any, request: Request, view: APIView | None = None) -> list | None:
        raw = request.query_params.get(self.page_query_param, "1")
        if not raw.isdigit() or int(raw) < 1:
            raise ValidationError({"page": "must be a whole number from 1"})
        try:
            return super().paginate_queryset(queryset, request, view)
        except NotFound:
            raise ValidationError({"page": f"page {raw} is past the last page"}) from None


class PagedView(APIView):
    """A view answering pages of a list (the schema shows the page envelope)."""

    pagination_class = Pagination


def paginate(view: APIView, request: Request, items: Any) -> tuple[Pagination, list]:
    """One page of ``items`` (a queryset or any sequence with a length) and its paginator."""
    paginator = Pagination()
    page = paginator.paginate_queryset(items, request, view)
    return paginator, page or []


@extend_schema_serializer(component_name="ErrorItem")
class ErrorItemSerializer(serializers.Serializer):
    field = serializers.CharField(allow_null=True, help_text="the input at fault, or null")
    reason = serializers.CharField()


@extend_schema_serializer(component_name="Errors")
class ErrorSerializer(serializers.Serializer):
    """The one error shape of the API."""

    errors = ErrorItemSerializer(many=True)


_ERROR_MEANINGS = {
    400: "bad input; every error names its field and reason, and nothing was written",
    401: "not logged in (send a session cookie or `Authorization: Token <key>`)",
    403: "not allowed (a session request without its CSRF token)",
    404: "no such object, or it belongs to someone else",
    409: "the object's state does not allow this now",
}


def error_responses(*codes: int) -> dict[int, OpenApiResponse]:
    """Schema entries for the error statuses an operation can answer (401/403 always included)."""
    return {code: OpenApiResponse(ErrorSerializer, description=_ERROR_MEANINGS[code])
            for code in sorted({401, 403, *codes})}


class DownloadView(APIView):
    """A view answering with a file or a stream. Content negotiation is skipped (``Accept:
    text/csv`` must not be refused with 406), so its errors are always JSON."""

    def perform_content_negotiation(self, request: Request, force: bool = False) -> tuple[BaseRenderer, str]:
        return super().perform_content_negotiation(request, force=True)


@extend_schema_serializer(component_name="Token")
class TokenOutputSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="send it as `Authorization: Token <token>`")


class TokenApi(ObtainAuthToken):
    """Exchange a username and password for the user's API token (the same token every time).

    Throttled per client address (``NASWEB_TOKEN_RATE``) so passwords cannot be guessed at speed."""

    authentication_classes: list = []
    throttle_classes = [AnonRateThrottle]
    parser_classes = [BoundedJSONParser, FormParser, MultiPartParser]  # anonymous JSON: bounded

    @extend_schema(request=AuthTokenSerializer, auth=[],
                   responses={200: TokenOutputSerializer, 400: ErrorSerializer, 429: ErrorSerializer})
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Any:
        return super().post(request, *args, **kwargs)
