"""Channel changes on the record page's History tab, with choices shown by label."""
from tests.factories import ChannelFactory


def test_edit_shows_labels_and_the_administrator(client_for, admin):
    channel = ChannelFactory(name="Web Store", type="sales", status="active")
    client = client_for(admin)
    response = client.post(f"/channels/{channel.pk}/edit/", {"name": "Web Store", "type": "commerce",
                                                             "status": "inactive", "entities": ["business_customer"]})
    assert response.status_code == 302
    html = client.get(f"/channels/{channel.pk}/").content.decode()
    pane = html[html.index('id="tab-history"'):]
    assert "Type:</span> <del>Sales</del> → Commerce" in pane
    assert "Status:</span> <del>Active</del> → Inactive" in pane
    assert str(admin) in pane
