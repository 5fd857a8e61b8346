from .views import ChannelEntity

urlpatterns, app_name = ChannelEntity.urls()
