from crm.views import Entity

from .filters import AccountFilter
from .forms import AccountForm
from .models import Account
from .resources import AccountResource
from .tables import AccountTable


class AccountEntity(Entity):
    model = Account
    namespace = "accounts"
    form_class = AccountForm
    table_class = AccountTable
    filterset_class = AccountFilter
    resource_class = AccountResource
    list_select_related = ("owner", "business_unit")
    icon = "bi-building"
