"""URLs: the admin and the demo page at ``/``."""

from demo.views import ask
from django.contrib import admin
from django.urls import path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", ask, name="ask"),
]
