from django.contrib.auth import views as auth_views
from django.urls import path

from frontend import views
from frontend.login import ThrottledLoginView

urlpatterns = [
    path("", views.home, name="home"),
    path("accounts/login/", ThrottledLoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("spaces/", views.space_list, name="space-list"),
    path("spaces/new/", views.space_new, name="space-new"),
    path("spaces/new/positions/", views.space_infer_positions, name="space-infer-positions"),
    path("spaces/<int:space_id>/", views.space_detail, name="space-detail"),
    path("spaces/<int:space_id>/delete/", views.space_delete, name="space-delete"),
    path("spaces/<int:space_id>/annotate/", views.space_annotate, name="space-annotate"),
    path("spaces/<int:space_id>/results/", views.space_results, name="space-results"),
    path("searches/new/", views.search_new, name="search-new"),
    path("searches/compare/", views.search_compare, name="search-compare"),
    path("searches/<int:search_id>/", views.search_dashboard, name="search-dashboard"),
    path("searches/<int:search_id>/evaluations/", views.search_evaluations, name="search-evaluations"),
    path("searches/<int:search_id>/evaluations/<int:evaluation_id>/retry/", views.evaluation_retry,
         name="evaluation-retry"),
    path("searches/<int:search_id>/delete/", views.search_delete, name="search-delete"),
    path("searches/<int:search_id>/<slug:action>/", views.search_action, name="search-action"),
]
