from .views import AccountEntity

urlpatterns, app_name = AccountEntity.urls()
