"""The form of the demo page."""

from django import forms

from creative_services import LLMTier


def entry_choices() -> list[tuple[str, str]]:
    """Active registry entries by name (read from the registry's snapshot: no query)."""
    from demo.llm import get_client

    names = sorted(entry.name for entry in get_client().registry.list_active())
    return [("", "(any entry of the tier)"), *((name, name) for name in names)]


class AskForm(forms.Form):
    """A prompt, and either a tier or one entry by name."""

    prompt = forms.CharField(widget=forms.Textarea(attrs={"rows": 4, "cols": 60}), max_length=4000)
    tier = forms.ChoiceField(
        choices=[(tier.value, tier.value) for tier in LLMTier], initial=LLMTier.STANDARD.value
    )
    llm_name = forms.ChoiceField(label="Entry", required=False, choices=())

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["llm_name"].choices = entry_choices()
