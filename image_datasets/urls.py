"""Dashboard routes of users' image datasets, mounted at ``/datasets/``."""

from django.urls import path

from image_datasets import views

urlpatterns = [
    path("", views.dataset_list, name="dataset-list"),
    path("<int:dataset_id>/delete/", views.dataset_delete, name="dataset-delete"),
]
