from .views import PurchaseRequestEntity

urlpatterns, app_name = PurchaseRequestEntity.urls()
