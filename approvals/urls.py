from .views import ApprovalEntity

urlpatterns, app_name = ApprovalEntity.urls()
