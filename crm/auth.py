"""Login throttling's page: what django-axes shows instead of its bare lockout text."""
from django.conf import settings
from django.shortcuts import render


def lockout_response(request, original_response=None, credentials=None):
    """The lockout page (HTTP 429) in the product's look, for /login/ and the admin's login:
    whose login is blocked, for how long, and who can lift it."""
    from axes.helpers import get_client_username, get_cool_off

    cool_off = get_cool_off(request)
    minutes = max(1, round(cool_off.total_seconds() / 60)) if cool_off else None
    context = {"username": get_client_username(request, credentials) or "", "minutes": minutes,
               "failure_limit": settings.AXES_FAILURE_LIMIT}
    return render(request, "registration/locked_out.html", context, status=settings.AXES_HTTP_RESPONSE_CODE)


def client_ip(request):
    """The address a login counts against: REMOTE_ADDR, or, behind CRM_PROXY_COUNT reverse
    proxies, the address the outermost of them saw, read from X-Forwarded-For counting from
    the right (whatever a client writes there itself stands further left)."""
    count = settings.CRM_PROXY_COUNT
    if count:
        hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
        if len(hops) >= count:
            return hops[-count]
    return request.META.get("REMOTE_ADDR")
