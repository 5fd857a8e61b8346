"""GET changes nothing, every change needs a POST with a CSRF token, and `next=` never leads
off the site. The walk covers every URL pattern (tests.security.world), with the ids of
records that exist, as an Administrator and as the records' owner."""
import pytest
from django.test import Client

from tests.factories import PASSWORD
from tests.security.world import all_paths, body, build_world, changed_tables, snapshot

EVIL = ("https://evil.example/", "//evil.example", "/\\evil.example", "https:evil.example")


@pytest.fixture
def world(org):
    return build_world(org)


def off_site(location):
    location = location.removeprefix("http://testserver")
    return not location.startswith("/") or location.startswith(("//", "/\\"))


def walk_get(client, paths, params=None):
    """GET every path; returns [(path, Location)] of redirects that leave the site."""
    outside = []
    for route, path in paths:
        # Not to the admin: its export takes every query parameter for a filter (a 500, left
        # to the owners of filter parsing); its own `next` is tested on its login page.
        response = client.get(path, {} if path.startswith("/admin/") else params or {})
        body(response)  # a streamed export runs its queries while it is read
        if response.status_code in (301, 302, 303, 307, 308) and off_site(response["Location"]):
            outside.append((path, response["Location"]))
    return outside


def culprits(client, paths):
    """The paths whose GET alone changes the database (to name them when the walk did)."""
    found = []
    for route, path in paths:
        before = snapshot()
        body(client.get(path))
        changed = changed_tables(before, snapshot())
        if changed:
            found.append((path, changed))
    return found


@pytest.mark.parametrize("who", ["admin", "owner"])
def test_get_of_every_url_changes_nothing(org, world, client_for, who):
    user = org.user("admin") if who == "admin" else world.owner
    client = client_for(user)
    paths = [(r, p) for r, p in all_paths(world) if p is not None]
    assert len(paths) > 300
    before = snapshot()
    outside = walk_get(client, paths, {"next": EVIL[0]})
    changed = changed_tables(before, snapshot())
    assert not changed, f"GET changed {changed}: {culprits(client, paths)}"
    assert not outside, f"redirected off the site: {outside}"


def test_every_post_without_csrf_token_is_refused(org, world):
    client = Client(enforce_csrf_checks=True)
    client.force_login(org.user("admin"))
    paths = [(r, p) for r, p in all_paths(world) if p is not None]
    before = snapshot()
    accepted = []
    for route, path in paths:
        response = client.post(path, {"confirm": "1", "post": "yes", "pk": [world.account.pk], "name": "x",
                                       "decision": "approve", "comment": "x"})
        if response.status_code != 403:
            accepted.append((route.name, path, response.status_code))
    assert not accepted, f"POST without a CSRF token not refused: {accepted}"
    assert not changed_tables(before, snapshot())
    # The approver's link is no exception: it needs no login, but its form carries a token.
    anonymous = Client(enforce_csrf_checks=True)
    assert anonymous.post(f"/approvals/respond/{world.approval_token}/", {"decision": "approve"}).status_code == 403
    world.approval.refresh_from_db()
    assert world.approval.status == "pending"


@pytest.mark.parametrize("target", EVIL)
def test_login_next_stays_on_the_site(org, client, target):
    user = org.user("east_rep")
    response = client.post(f"/login/?next={target}", {"username": user.username, "password": PASSWORD,
                                                      "next": target})
    assert response.status_code == 302 and not off_site(response["Location"]), response["Location"]
    # Logged in, the login page sends him on at once: not off the site either.
    response = client.get("/login/", {"next": target})
    assert response.status_code == 302 and not off_site(response["Location"]), response["Location"]
    response = client.post("/logout/", {"next": target})
    assert response.status_code == 302 and not off_site(response["Location"]), response["Location"]


@pytest.mark.parametrize("target", EVIL)
def test_admin_login_next_stays_on_the_site(org, client, target):
    user = org.user("admin")
    response = client.post(f"/admin/login/?next={target}", {"username": user.username, "password": PASSWORD,
                                                            "next": target})
    assert response.status_code == 302 and not off_site(response["Location"]), response["Location"]


@pytest.mark.parametrize("target", EVIL)
def test_form_pages_ignore_foreign_next(org, world, client_for, target):
    """Pages that finish with a redirect (save, share, delete, saved views) go to the record or
    the grid, whatever `next` says."""
    owner = world.owner
    client = client_for(owner)
    w = world
    posts = [
        (f"/accounts/{w.account.pk}/edit/", {"name": "Renamed", "next": target}),
        (f"/accounts/{w.account.pk}/share/", {"target": f"user:{org.user('west_rep').pk}", "level": "view",
                                              "next": target}),
        (f"/views/{w.saved_view.pk}/default/", {"default": "1", "next": target}),
        ("/views/save/", {"grid": "accounts", "query": "q=x", "name": "Mine", "next": target}),
        (f"/locations/{w.location.pk}/delete/", {"confirm": "1", "next": target}),
    ]
    for path, data in posts:
        response = client.post(f"{path}?next={target}", data)
        if response.status_code in (301, 302, 303, 307, 308):
            assert not off_site(response["Location"]), (path, response["Location"])
