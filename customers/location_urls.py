"""Locations have their own Entity and namespace (`locations`), under /locations/."""
from .views import LocationEntity

urlpatterns, app_name = LocationEntity.urls()
