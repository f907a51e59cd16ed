"""REST API of users' image datasets: thin views over ``image_datasets.services`` and ``.selectors``.

Someone else's dataset is "not found" (404), never 403.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from image_datasets import selectors, services
from image_datasets.models import ImageDataset
from nasweb.api import PagedView, error_responses, paginate


@extend_schema_serializer(component_name="ImageDataset")
class ImageDatasetOutputSerializer(serializers.ModelSerializer):
    """A dataset and what its check found (``class_names``, ``split_sizes``, ``image_shape`` once ready)."""

    n_classes = serializers.IntegerField(read_only=True)
    n_images = serializers.IntegerField(read_only=True)

    class Meta:
        model = ImageDataset
        fields = ["id", "name", "state", "failure_reason", "format", "archive_name", "archive_bytes", "class_names",
                  "n_classes", "split_sizes", "n_images", "image_shape", "created_at", "updated_at"]
        read_only_fields = fields


class ImageDatasetListApi(PagedView):
    """Your image datasets, newest first; or upload one."""

    parser_classes = [MultiPartParser, FormParser]

    @extend_schema_serializer(component_name="ImageDatasetCreateInput")
    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=1000, allow_blank=True)
        archive = serializers.FileField(
            help_text="a .zip or .tar(.gz) of class folders (class_name/*.png, optionally under train/ and "
                      "validation/), of a datasets save_to_disk folder or of parquet files; or one .parquet file")

    @extend_schema(responses={200: ImageDatasetOutputSerializer(many=True), **error_responses(400)})
    def get(self, request: Request) -> Response:
        """Your image datasets, newest first."""
        paginator, page = paginate(self, request, selectors.image_dataset_list(owner=request.user))
        return paginator.get_paginated_response(ImageDatasetOutputSerializer(page, many=True).data)

    @extend_schema(request={"multipart/form-data": InputSerializer},
                   responses={201: ImageDatasetOutputSerializer, **error_responses(400)})
    def post(self, request: Request) -> Response:
        """Upload a dataset. Its listing is checked at once (400 for no archive, links, paths leaving the folder,
        too many or too large files); a worker then checks classes, sizes and image shapes: the dataset becomes
        ``ready`` or ``failed`` with a reason."""
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        dataset = services.image_dataset_create(owner=request.user, name=data["name"], archive_upload=data["archive"])
        return Response(ImageDatasetOutputSerializer(dataset).data, status=status.HTTP_201_CREATED)


class ImageDatasetDetailApi(APIView):
    """One image dataset; delete it (refused while an active search trains on it)."""

    @extend_schema(responses={200: ImageDatasetOutputSerializer, **error_responses(404)})
    def get(self, request: Request, dataset_id: int) -> Response:
        """One image dataset and what its check found."""
        return Response(ImageDatasetOutputSerializer(
            selectors.image_dataset_get(owner=request.user, dataset_id=dataset_id)).data)

    @extend_schema(responses={204: None, **error_responses(404, 409)})
    def delete(self, request: Request, dataset_id: int) -> Response:
        """Delete the dataset and its files (409 while an active search trains on it)."""
        services.image_dataset_delete(dataset=selectors.image_dataset_get(owner=request.user, dataset_id=dataset_id))
        return Response(status=status.HTTP_204_NO_CONTENT)
