from django.urls import path

from .views import ActivityCreateView, ActivityDetailView, ActivityDoneView

app_name = "activities"
urlpatterns = [
    # target: "<app_label>.<model>" of the record, e.g. customers.businesscustomer
    path("<str:target>/<int:pk>/new/<str:kind>/", ActivityCreateView.as_view(), name="create"),
    path("<int:pk>/", ActivityDetailView.as_view(), name="detail"),
    path("<int:pk>/done/", ActivityDoneView.as_view(), name="done"),
]
