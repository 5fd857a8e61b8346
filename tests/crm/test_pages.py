"""Every entity's pages render for an administrator without template text leaking through."""
import pytest
from django.urls import reverse

from crm.views import ENTITIES


@pytest.mark.parametrize("entity", ENTITIES, ids=lambda e: e.namespace)
@pytest.mark.parametrize("page", ["list", "create", "import"])
def test_pages_render_cleanly(client_for, admin, entity, page):
    response = client_for(admin).get(reverse(f"{entity.namespace}:{page}"))
    assert response.status_code == 200
    html = response.content.decode()
    for leak in ("{#", "#}", "{%", "%}", "{{", "}}"):
        assert leak not in html, leak
