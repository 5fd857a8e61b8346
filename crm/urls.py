from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from . import views
from .views import DeactivateUsersView, HomeView, RoleEntity, SearchView, UserEntity

role_urls = RoleEntity.urls()
user_patterns, user_namespace = UserEntity.urls()
user_urls = (user_patterns + [path("deactivate/", DeactivateUsersView.as_view(), name="deactivate")], user_namespace)
saved_view_urls = ([
    path("save/", views.SavedViewCreateView.as_view(), name="save"),
    path("<int:pk>/", views.SavedViewApplyView.as_view(), name="apply"),
    path("<int:pk>/edit/", views.SavedViewEditView.as_view(), name="edit"),
    path("<int:pk>/default/", views.SavedViewDefaultView.as_view(), name="default"),
    path("<int:pk>/delete/", views.SavedViewDeleteView.as_view(), name="delete"),
    path("owners/<slug:grid>/", views.OwnerAutocompleteView.as_view(), name="owners"),  # grids' owner filters
], "saved_views")

admin.site.site_header = "CRM administration"
admin.site.site_title = "CRM admin"

urlpatterns = [
    path("", HomeView.as_view(), name="home"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("search/", SearchView.as_view(), name="search"),
    path("views/", include(saved_view_urls)),
    path("jobs/", include("crm.job_urls")),
    path("admin/", admin.site.urls),
    path("channels/", include("channels.urls")),
    path("accounts/", include("accounts.urls")),
    path("customers/", include("customers.urls")),
    path("locations/", include("customers.location_urls")),
    path("activities/", include("activities.urls")),
    path("contacts/groups/", include("contacts.group_urls")),
    path("contacts/", include("contacts.urls")),
    path("purchase-requests/", include("approvals.purchase_urls")),
    path("approvals/", include("approvals.urls")),
    path("roles/", include(role_urls)),
    path("users/", include(user_urls)),
]
