from .views import CustomerEntity

urlpatterns, app_name = CustomerEntity.urls()
