"""Dashboard pages of users' image datasets: the list with its upload form, and delete."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from frontend.views import page
from image_datasets import selectors, services
from image_datasets.forms import ImageDatasetUploadForm
from nasweb.errors import DomainError


@page
@require_http_methods(["GET", "POST"])
def dataset_list(request: HttpRequest) -> HttpResponse:
    """Your datasets and the upload form; a refused upload shows the service's reason on its field."""
    form = ImageDatasetUploadForm()
    if request.method == "POST":
        form = ImageDatasetUploadForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                dataset = services.image_dataset_create(owner=request.user, name=form.cleaned_data["name"],
                                                        archive_upload=form.cleaned_data["archive"])
            except DomainError as exc:
                form.add_domain_error(exc)
            else:
                messages.success(request, f"Dataset “{dataset.name}” uploaded; a worker is checking it.")
                return redirect("dataset-list")
    datasets = Paginator(selectors.image_dataset_list(owner=request.user), 50).get_page(request.GET.get("page"))
    return render(request, "image_datasets/dataset_list.html", {"datasets": datasets, "form": form})


@page
@require_POST
def dataset_delete(request: HttpRequest, dataset_id: int) -> HttpResponse:
    dataset = selectors.image_dataset_get(owner=request.user, dataset_id=dataset_id)
    try:
        services.image_dataset_delete(dataset=dataset)
    except DomainError as exc:
        messages.error(request, exc.reason)
    else:
        messages.success(request, f"Dataset “{dataset.name}” deleted.")
    return redirect("dataset-list")
