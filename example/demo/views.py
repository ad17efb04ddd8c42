"""The demo page: a prompt goes to the LLM of the chosen tier (or entry), the answer comes back."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from creative_services import CreativeServicesError
from demo.forms import AskForm
from demo.llm import get_client


def ask(request: HttpRequest) -> HttpResponse:
    """GET: the form. POST: one call through the client, then the answer (or the typed error)."""
    response = error = None
    form = AskForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        selection = (
            {"llm_name": form.cleaned_data["llm_name"]}
            if form.cleaned_data["llm_name"]
            else {"tier": form.cleaned_data["tier"]}
        )
        user_id = request.user.pk if request.user.is_authenticated else None
        try:
            response = get_client().generate_sync(
                form.cleaned_data["prompt"],
                user_id=user_id,
                timeout=30,
                metadata={"source": "example page"},
                **selection,
            )
        except CreativeServicesError as exc:  # typed, and never contains an API key
            error = f"{type(exc).__name__}: {exc}"
    return render(request, "demo/ask.html", {"form": form, "response": response, "error": error})
