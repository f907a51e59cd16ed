"""A developer reads the OpenAPI schema and the Swagger UI; both are complete and self-hosted."""

from __future__ import annotations

import re

from django.urls import URLPattern
from drf_spectacular.validation import validate_schema
from rest_framework.test import APIClient

from nasweb import api_urls


def schema(client: APIClient) -> dict:
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    return response.json()


def test_the_schema_is_valid_openapi_3(db) -> None:
    document = schema(APIClient())
    assert document["openapi"].startswith("3.")
    validate_schema(document)  # raises on any violation of the OpenAPI 3 JSON schema


def test_every_api_route_is_in_the_schema(db) -> None:
    paths = set(schema(APIClient())["paths"])
    for pattern in api_urls.urlpatterns:
        assert isinstance(pattern, URLPattern)
        if pattern.name == "api-docs":
            continue
        route = "/api/" + re.sub(r"<int:(\w+)>", r"{\1}", str(pattern.pattern))
        assert route in paths, route


def test_every_operation_documents_the_error_shape(db) -> None:
    document = schema(APIClient())
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if path == "/api/token/":
                continue
            assert {"401", "403"} <= set(operation["responses"]), (method, path)
            for code in operation["responses"]:
                if code.startswith("4"):
                    body = operation["responses"][code]["content"]["application/json"]["schema"]
                    assert body == {"$ref": "#/components/schemas/Errors"}, (method, path, code)


def test_both_token_and_session_authentication_are_documented(db) -> None:
    schemes = schema(APIClient())["components"]["securitySchemes"]
    assert schemes["tokenAuth"]["in"] == "header" and schemes["cookieAuth"]["in"] == "cookie"


def test_the_swagger_ui_loads_its_assets_from_our_static_files_not_a_cdn(db) -> None:
    client = APIClient()
    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "cdn." not in html and "jsdelivr" not in html and "unpkg" not in html
    assets = re.findall(r'(?:src|href)="([^"]*drf_spectacular_sidecar[^"]*)"', html)
    assert any(asset.endswith("swagger-ui-bundle.js") for asset in assets), assets
    for asset in assets:
        response = client.get(asset)
        assert response.status_code == 200, asset
        response.close()
