from django.urls import path

from .views import (ApproversView, AssignableContactsView, AssignCustomerView, ContactEntity, CustomerAssignView,
                    CustomerGroupMoveView, CustomerUnassignView, UnassignCustomerView)

urlpatterns, app_name = ContactEntity.urls()
urlpatterns += [
    path("<int:pk>/customers/", AssignCustomerView.as_view(), name="assign_customer"),
    path("<int:pk>/customers/<int:assignment_pk>/remove/", UnassignCustomerView.as_view(), name="unassign_customer"),
    # The customer page's contacts section (the contacts app owns these writes).
    path("of-customer/<int:customer_pk>/assign/", CustomerAssignView.as_view(), name="customer_assign"),
    path("of-customer/<int:customer_pk>/assignable/", AssignableContactsView.as_view(), name="assignable"),
    path("of-customer/<int:customer_pk>/<int:contact_pk>/remove/", CustomerUnassignView.as_view(),
         name="customer_unassign"),
    path("of-customer/<int:customer_pk>/<int:contact_pk>/group/", CustomerGroupMoveView.as_view(),
         name="customer_group"),
    path("of-customer/<int:customer_pk>/approvers/", ApproversView.as_view(), name="customer_approvers"),
]
