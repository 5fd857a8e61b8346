"""A channel that has business customers cannot be deleted (deactivating it keeps them)."""
from channels.models import Channel
from tests.customers.factories import BusinessCustomerFactory
from tests.factories import ChannelFactory


def test_channel_with_customers_cannot_be_deleted(client_for, admin, east_rep):
    channel = ChannelFactory(name="Trade Fairs")
    customer = BusinessCustomerFactory(channel=channel, owner=east_rep)
    client = client_for(admin)
    response = client.post(f"/channels/{channel.pk}/delete/", {"confirm": "1"}, follow=True)
    assert "This channel has customers and cannot be deleted. Deactivate it instead" in response.content.decode()
    assert Channel.objects.filter(pk=channel.pk).exists()

    empty = ChannelFactory(name="Unused")
    response = client.post("/channels/delete/", {"pk": [channel.pk, empty.pk], "confirm": "1"})
    assert response.status_code == 302
    assert set(Channel.objects.values_list("name", flat=True)) == {"Trade Fairs", "Unused"}, "all or none"

    channel.status = Channel.Status.INACTIVE
    channel.save()
    customer.refresh_from_db()
    assert customer.channel == channel
    assert client_for(east_rep).get(f"/customers/{customer.pk}/").status_code == 200, "deactivating loses nothing"
    assert client.post(f"/channels/{empty.pk}/delete/", {"confirm": "1"}).status_code == 302
    assert not Channel.objects.filter(pk=empty.pk).exists()
