from django.urls import path

from .views import AssignCustomerView, ContactEntity, UnassignCustomerView

urlpatterns, app_name = ContactEntity.urls()
urlpatterns += [
    path("<int:pk>/customers/", AssignCustomerView.as_view(), name="assign_customer"),
    path("<int:pk>/customers/<int:assignment_pk>/remove/", UnassignCustomerView.as_view(), name="unassign_customer"),
]
