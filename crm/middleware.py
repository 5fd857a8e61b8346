"""Requests carrying a NUL character are refused before any view reads them.

No value of this site holds a NUL, and PostgreSQL refuses one in any string it is given
("A string literal cannot contain NUL characters"), so a NUL reaching a query is a 500
there while SQLite accepts it. Django's form fields refuse NUL, but grids, autocompletes,
mass actions and the admin read request.GET and request.POST directly; checking here once
covers every view, including those added later.
"""
from django.http import HttpResponseBadRequest

NUL = "\x00"
MESSAGE = "The request contains a NUL character, which no field accepts. Remove it and try again."


def _has_nul(query):
    return any(NUL in key or any(NUL in value for value in values) for key, values in query.lists())


class RefuseNulMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        # request.POST is parsed here rather than by the CSRF check, which would parse it anyway.
        if _has_nul(request.GET) or (request.method == "POST" and _has_nul(request.POST)):
            return HttpResponseBadRequest(MESSAGE, content_type="text/plain; charset=utf-8")
        return self.get_response(request)
