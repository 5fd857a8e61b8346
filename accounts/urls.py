from django.urls import path

from .views import AccountEntity, MergeView

urlpatterns, app_name = AccountEntity.urls()
urlpatterns += [path("merge/", MergeView.as_view(), name="merge")]
