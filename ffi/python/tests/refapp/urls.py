from pathlib import Path

from django.http import HttpResponse
from django.urls import path

PROBE_PAGE = Path(__file__).resolve().parent.parent / "probe.html"


def probe_page(request):
    """The page the browser tests load: it opens WebSockets from this origin."""
    return HttpResponse(PROBE_PAGE.read_bytes(), content_type="text/html; charset=utf-8")


urlpatterns = [path("", probe_page)]
