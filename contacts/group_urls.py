"""Contact groups have their own Entity and namespace (`contact_groups`), under /contacts/groups/."""
from .views import ContactGroupEntity

urlpatterns, app_name = ContactGroupEntity.urls()
