"""Root URLs: the dashboard, the REST API and its schema, the health check, the admin."""

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import include, path
from django.views.defaults import page_not_found
from drf_spectacular.views import SpectacularAPIView

from nasweb.health import healthz


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """API clients get the API's error shape for a path no route matches, people the 404 page."""
    if request.path.startswith("/api/"):
        return JsonResponse({"errors": [{"field": None, "reason": "not found"}]}, status=404)
    return page_not_found(request, exception)


handler404 = not_found

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/", include("nasweb.api_urls")),
    path("datasets/", include("image_datasets.urls")),
    path("", include("frontend.urls")),
]
