from crm.views import Entity

from .filters import ChannelFilter
from .forms import ChannelForm
from .models import Channel
from .resources import ChannelResource
from .tables import ChannelTable


class ChannelEntity(Entity):
    model = Channel
    namespace = "channels"
    form_class = ChannelForm
    table_class = ChannelTable
    filterset_class = ChannelFilter
    resource_class = ChannelResource
    detail_template = "channels/channel_detail.html"
    icon = "bi-diagram-3"
    searchable = False
    protected_message = "This channel has customers and cannot be deleted. Deactivate it instead: its customers stay visible."

    @classmethod
    def detail_context(cls, request, obj):
        from crm.access import restrict

        related = getattr(obj, "customers", None)
        if related is None:
            return {}
        customers = restrict(related.select_related("account", "owner"), request.user, "view")
        return {"customers": customers.order_by("name")[:50], "customer_count": customers.count()}
