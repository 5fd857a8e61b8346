from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from .views import DeactivateUsersView, HomeView, RoleEntity, SearchView, UserEntity

role_urls = RoleEntity.urls()
user_patterns, user_namespace = UserEntity.urls()
user_urls = (user_patterns + [path("deactivate/", DeactivateUsersView.as_view(), name="deactivate")], user_namespace)

admin.site.site_header = "CRM administration"
admin.site.site_title = "CRM admin"

urlpatterns = [
    path("", HomeView.as_view(), name="home"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("search/", SearchView.as_view(), name="search"),
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
