"""Routes of the REST API, mounted at ``/api/`` (the schema itself is at ``/api/schema/``)."""

from django.urls import path
from drf_spectacular.views import SpectacularSwaggerView

from image_datasets import api as image_datasets
from nasweb.api import TokenApi
from searches import api as searches
from spaces import api as spaces

urlpatterns = [
    path("token/", TokenApi.as_view(), name="api-token"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    # search spaces
    path("spaces/", spaces.SpaceListApi.as_view(), name="api-space-list"),
    path("spaces/infer-positions/", spaces.SpaceInferPositionsApi.as_view(), name="api-space-infer-positions"),
    path("spaces/<int:space_id>/", spaces.SpaceDetailApi.as_view(), name="api-space-detail"),
    path("spaces/<int:space_id>/results/", spaces.SpaceResultsApi.as_view(), name="api-space-results"),
    path("spaces/<int:space_id>/device-latencies/", spaces.SpaceDeviceLatenciesApi.as_view(),
         name="api-space-device-latencies"),
    path("spaces/<int:space_id>/bundle/", spaces.SpaceBundleApi.as_view(), name="api-space-bundle"),
    path("spaces/<int:space_id>/module/", spaces.SpaceModuleApi.as_view(), name="api-space-module"),
    path("spaces/<int:space_id>/profile/", spaces.SpaceProfileApi.as_view(), name="api-space-profile"),
    path("spaces/<int:space_id>/encodings/", spaces.SpaceEncodingsApi.as_view(), name="api-space-encodings"),
    path("spaces/<int:space_id>/predictions/", spaces.SpacePredictionsApi.as_view(), name="api-space-predictions"),
    path("spaces/<int:space_id>/networks/<int:encoding_index>/", spaces.NetworkSummaryApi.as_view(),
         name="api-space-network"),
    # users' image datasets (for the image-classification evaluator)
    path("datasets/", image_datasets.ImageDatasetListApi.as_view(), name="api-dataset-list"),
    path("datasets/<int:dataset_id>/", image_datasets.ImageDatasetDetailApi.as_view(), name="api-dataset-detail"),
    # searches and their evaluations
    path("searches/", searches.SearchListApi.as_view(), name="api-search-list"),
    path("searches/<int:search_id>/", searches.SearchDetailApi.as_view(), name="api-search-detail"),
    path("searches/<int:search_id>/pause/", searches.SearchPauseApi.as_view(), name="api-search-pause"),
    path("searches/<int:search_id>/resume/", searches.SearchResumeApi.as_view(), name="api-search-resume"),
    path("searches/<int:search_id>/cancel/", searches.SearchCancelApi.as_view(), name="api-search-cancel"),
    path("searches/<int:search_id>/extend/", searches.SearchExtendApi.as_view(), name="api-search-extend"),
    path("searches/<int:search_id>/retry-failed/", searches.SearchRetryFailedApi.as_view(),
         name="api-search-retry-failed"),
    path("searches/<int:search_id>/clone/", searches.SearchCloneApi.as_view(), name="api-search-clone"),
    path("searches/<int:search_id>/positions/", searches.SearchPositionsApi.as_view(), name="api-search-positions"),
    path("searches/<int:search_id>/progress/", searches.SearchProgressApi.as_view(), name="api-search-progress"),
    path("searches/<int:search_id>/curve/", searches.SearchCurveApi.as_view(), name="api-search-curve"),
    path("searches/<int:search_id>/reference-curve/", searches.SearchReferenceCurveApi.as_view(),
         name="api-search-reference-curve"),
    path("searches/<int:search_id>/pareto/", searches.SearchParetoApi.as_view(), name="api-search-pareto"),
    path("searches/<int:search_id>/hypervolume/", searches.SearchHypervolumeApi.as_view(),
         name="api-search-hypervolume"),
    path("searches/<int:search_id>/predictions/", searches.SearchPredictionsApi.as_view(),
         name="api-search-predictions"),
    path("searches/<int:search_id>/evaluations/", searches.EvaluationListApi.as_view(),
         name="api-evaluation-list"),
    path("searches/<int:search_id>/evaluations.csv", searches.EvaluationCsvApi.as_view(),
         name="api-evaluation-csv"),
    path("searches/<int:search_id>/evaluations/<int:evaluation_id>/", searches.EvaluationDetailApi.as_view(),
         name="api-evaluation-detail"),
    path("searches/<int:search_id>/evaluations/<int:evaluation_id>/log/", searches.EvaluationLogApi.as_view(),
         name="api-evaluation-log"),
    path("searches/<int:search_id>/evaluations/<int:evaluation_id>/retry/", searches.EvaluationRetryApi.as_view(),
         name="api-evaluation-retry"),
]
