from django.urls import path

from .views import JobActionView, JobFileView, JobListView, JobView

app_name = "jobs"
urlpatterns = [
    path("", JobListView.as_view(), name="list"),
    path("<int:pk>/", JobView.as_view(), name="detail"),
    path("<int:pk>/file/", JobFileView.as_view(), name="file"),
    path("<int:pk>/<slug:action>/", JobActionView.as_view(), name="action"),
]
