"""Every entity's pages render for an administrator without template text leaking through."""
import pytest
from django.urls import reverse

from crm.views import ENTITIES


@pytest.mark.parametrize("entity, page", [(e, page) for e in ENTITIES for page in ("list", "create", "import")
                                           if page != "import" or e.importable],
                         ids=lambda v: getattr(v, "namespace", v))
def test_pages_render_cleanly(client_for, admin, entity, page):
    if page == "create" and not entity.can_create(admin):
        pytest.skip(f"{entity.namespace} are not created by hand")  # e.g. approvals: the rules open them
    response = client_for(admin).get(reverse(f"{entity.namespace}:{page}"))
    assert response.status_code == 200
    html = response.content.decode()
    for leak in ("{#", "#}", "{%", "%}", "{{", "}}"):
        assert leak not in html, leak
