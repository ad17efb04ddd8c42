"""Frozen value types shared by every part of the library.

They are plain frozen dataclasses, not pydantic models: `import creative_services` must stay under
60 ms, and pydantic alone costs more than that. Validation happens in ``__post_init__`` and raises
:class:`~creative_services.exceptions.InvalidEntryError` with the field named.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Literal, TypedDict

from creative_services._request import check_member_id, check_metadata
from creative_services._secrets import remember, remember_env
from creative_services.exceptions import InvalidEntryError, InvalidTierError

__all__ = [
    "CostSource",
    "EntryRef",
    "LLMEntry",
    "LLMResponse",
    "LLMTier",
    "Outcome",
    "Secret",
    "ToolCall",
    "Usage",
    "UsageRecord",
]

CostSource = Literal["provider", "entry", "litellm", "local", "cache", "unknown"]
"""Where a cost came from: provider-reported, the entry's own prices, LiteLLM's bundled price map,
the ``local`` tier (always 0), a response-cache hit (always 0) or nowhere (cost is ``None``)."""

Outcome = Literal["success", "error", "cancelled"]


class ToolCall(TypedDict):
    """One tool call the model asked for; the same shape for every provider."""

    id: str | None
    name: str
    arguments: str
    """The arguments as a JSON string (as OpenAI sends them; other providers' objects are
    serialised): ``json.loads(call["arguments"])``."""


class LLMTier(enum.StrEnum):
    """A quality/price class of models; callers ask for a tier, the registry picks the model.

    ``LLMTier("STANDARD")`` and ``LLMTier("standard")`` both work; a bad value raises
    :class:`~creative_services.exceptions.InvalidTierError` listing the valid ones.
    """

    ECONOMY = "economy"
    STANDARD = "standard"
    PREMIUM = "premium"
    LOCAL = "local"

    @classmethod
    def _missing_(cls, value: object) -> LLMTier:
        if isinstance(value, str):
            folded = value.strip().lower()
            for member in cls:
                if member.value == folded:
                    return member
        raise InvalidTierError(value, [m.value for m in cls])

    @classmethod
    def parse(cls, value: LLMTier | str) -> LLMTier:
        """Return the tier for ``value`` (a tier or a case-insensitive name)."""
        return value if isinstance(value, LLMTier) else cls(value)


class Secret:
    """A string that never shows itself in ``repr``, ``str``, logs or dumps.

    Call :meth:`get_secret_value` at the single place the real value is needed.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        remember(value)  # masked in every message from now on

    def get_secret_value(self) -> str:
        """Return the real value."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')" if self._value else "Secret('')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> tuple[Any, ...]:
        return (Secret, (self._value,))


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _to_decimal(name: str, value: object) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidEntryError(name, f"must be a finite number, got {value!r}")
        value = repr(value)  # Decimal(0.1) would carry binary noise; repr keeps what was written
    try:
        result = Decimal(str(value)) if not isinstance(value, Decimal) else value
    except InvalidOperation:
        raise InvalidEntryError(name, f"must be a number, got {value!r}") from None
    if not result.is_finite() or result < 0:
        raise InvalidEntryError(name, f"must be a finite number >= 0, got {value!r}")
    return result


@dataclass(frozen=True, slots=True, kw_only=True)
class LLMEntry:
    """One model the registry can hand out: the fields of the Django ``Llms`` model.

    ``api_key`` may be given as a plain string; it is stored as a :class:`Secret`. An empty key
    means "use the provider's usual environment variable" (e.g. ``OPENAI_API_KEY``), read when
    the call is made. ``api_key_env`` names another variable to read instead.
    ``extra_params`` are passed to LiteLLM as they are (e.g. ``{"top_p": 0.9}``).
    """

    id: int | None = None
    name: str
    provider: str
    model_name: str
    tier: LLMTier = LLMTier.STANDARD
    api_key: Secret = field(default_factory=lambda: Secret(""))
    api_endpoint: str | None = None
    max_tokens: int = 4096
    temperature: float = 0.7
    cost_per_1k_input: Decimal | None = None
    cost_per_1k_output: Decimal | None = None
    is_active: bool = True
    priority: int = 0
    api_key_env: str | None = None
    extra_params: Mapping[str, Any] = field(default_factory=dict)

    if TYPE_CHECKING:
        # What the constructor accepts (keys as str, prices as str/float/int); after
        # __post_init__ the attributes have the types declared above.
        def __init__(
            self,
            *,
            id: int | None = None,
            name: str,
            provider: str,
            model_name: str,
            tier: LLMTier | str = LLMTier.STANDARD,
            api_key: Secret | str | None = None,
            api_endpoint: str | None = None,
            max_tokens: int = 4096,
            temperature: float = 0.7,
            cost_per_1k_input: Decimal | float | str | None = None,
            cost_per_1k_output: Decimal | float | str | None = None,
            is_active: bool = True,
            priority: int = 0,
            api_key_env: str | None = None,
            extra_params: Mapping[str, Any] | None = None,
        ) -> None: ...

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        for name in ("name", "provider", "model_name"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise InvalidEntryError(name, f"must be a non-empty string, got {value!r}")
        set_(self, "provider", self.provider.strip().lower())
        try:
            set_(self, "tier", LLMTier.parse(self.tier))
        except InvalidTierError as exc:
            raise InvalidEntryError("tier", str(exc)) from None
        if not isinstance(self.api_key, Secret):
            if self.api_key is not None and not isinstance(self.api_key, str):
                raise InvalidEntryError("api_key", "must be a string")
            set_(self, "api_key", Secret(self.api_key or ""))
        if self.api_endpoint is not None and not isinstance(self.api_endpoint, str):
            raise InvalidEntryError("api_endpoint", "must be a URL string or None")
        if self.api_endpoint == "":
            set_(self, "api_endpoint", None)
        if self.id is not None and (isinstance(self.id, bool) or not isinstance(self.id, int)):
            raise InvalidEntryError("id", f"must be an integer or None, got {self.id!r}")
        if isinstance(self.max_tokens, bool) or not isinstance(self.max_tokens, int):
            raise InvalidEntryError("max_tokens", f"must be an integer, got {self.max_tokens!r}")
        if self.max_tokens < 1:
            raise InvalidEntryError("max_tokens", f"must be >= 1, got {self.max_tokens}")
        temp = self.temperature
        if isinstance(temp, bool) or not isinstance(temp, int | float) or not 0 <= temp <= 2:
            raise InvalidEntryError("temperature", f"must be a number in [0, 2], got {temp!r}")
        set_(self, "temperature", float(temp))
        for name in ("cost_per_1k_input", "cost_per_1k_output"):
            set_(self, name, _to_decimal(name, getattr(self, name)))
        if self.extra_params is not None and not isinstance(self.extra_params, Mapping):
            raise InvalidEntryError(
                "extra_params", f"must be a mapping, got {type(self.extra_params).__name__}"
            )
        set_(self, "extra_params", dict(self.extra_params or {}))
        if self.api_key_env and not (
            isinstance(self.api_key_env, str) and _ENV_NAME.fullmatch(self.api_key_env)
        ):  # most often a key pasted into the wrong field: never echo it
            remember(self.api_key_env)
            raise InvalidEntryError(
                "api_key_env",
                "must name an environment variable (letters, digits, _); "
                "to give the key itself use api_key",
            )
        remember_env(self.api_key_env)

    @property
    def ref(self) -> EntryRef:
        """The entry's identity without its secrets, as carried by responses and errors."""
        return EntryRef(
            id=self.id,
            name=self.name,
            provider=self.provider,
            model=self.model_name,
            tier=self.tier,
        )

    @property
    def model(self) -> str:
        """The original package's name for :attr:`model_name`."""
        return self.model_name

    def to_dict(self) -> dict[str, Any]:
        """The entry as a JSON-friendly dict; the key is masked, never dumped."""
        return {
            "id": self.id,
            "name": self.name,
            "provider": self.provider,
            "model_name": self.model_name,
            "tier": self.tier.value,
            "api_key": "**********" if self.api_key else "",
            "api_endpoint": self.api_endpoint,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "cost_per_1k_input": None
            if self.cost_per_1k_input is None
            else str(self.cost_per_1k_input),
            "cost_per_1k_output": None
            if self.cost_per_1k_output is None
            else str(self.cost_per_1k_output),
            "is_active": self.is_active,
            "priority": self.priority,
            "api_key_env": self.api_key_env,
            "extra_params": dict(self.extra_params),
        }


@dataclass(frozen=True, slots=True)
class EntryRef:
    """Which registry entry served (or failed) a call: no key, safe to log and pickle."""

    id: int | None
    name: str
    provider: str
    model: str
    tier: LLMTier


_USAGE_KEYS = frozenset(
    {"prompt_tokens", "completion_tokens", "reasoning_tokens", "cached_tokens", "total_tokens"}
)


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one call.

    ``completion_tokens`` counts the answer; ``reasoning_tokens`` counts thinking tokens that the
    provider reported separately (Gemini) or inside the completion (OpenAI o-series). Both are
    billed as output: see :attr:`output_tokens`. ``estimated`` is True when the provider sent no
    usage and the counts were computed locally.
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0
    estimated: bool = False

    @property
    def output_tokens(self) -> int:
        """Tokens billed as output: the answer plus reasoning."""
        return self.completion_tokens + self.reasoning_tokens

    @property
    def total_tokens(self) -> int:
        """Prompt plus output tokens."""
        return self.prompt_tokens + self.output_tokens

    def __getitem__(self, key: str) -> int:
        """``usage["prompt_tokens"]``: the original package's usage was a dict of these counts.

        Raises: KeyError for other keys.
        """
        if key in _USAGE_KEYS:
            return int(getattr(self, key))
        raise KeyError(key)


@dataclass(frozen=True, slots=True)
class LLMResponse:
    """The result of :meth:`DynamicLLMClient.generate`."""

    content: str | None
    entry: EntryRef
    usage: Usage
    cost: Decimal | None
    cost_source: CostSource
    model: str | None
    """The model name the provider reported (may be more specific than the entry's)."""
    finish_reason: str | None
    latency_ms: float
    attempts: int
    """HTTP attempts made in total, over every entry tried."""
    tried: tuple[EntryRef, ...] = ()
    """Entries tried and failed before :attr:`entry` answered, in order."""
    request_id: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    cache_hit: bool = False
    """True when the answer came from the response cache: no provider call, cost 0."""
    parsed: Any = None
    """With ``response_format``: the validated answer (a pydantic model instance, or the decoded
    JSON); ``None`` otherwise."""
    raw: Any = field(default=None, repr=False, compare=False)
    """The provider's answer object as LiteLLM returned it (``None`` for streams and cache
    hits): the OpenAI drop-in serves its ``id``, ``created``, ``system_fingerprint``, choices."""

    @property
    def total_tokens(self) -> int:
        """Prompt plus output tokens of the call (``usage.total_tokens``)."""
        return self.usage.total_tokens

    @property
    def provider(self) -> str:
        """The provider of the entry that answered (``entry.provider``)."""
        return self.entry.provider


@dataclass(frozen=True, slots=True, kw_only=True)
class UsageRecord:
    """One call's books: written exactly once per call, failures and cancellations included."""

    llm_id: int | None
    user_id: int | str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0
    cost: Decimal | None = None
    cost_source: CostSource = "unknown"
    tier: str | None = None
    entry_name: str | None = None
    provider: str | None = None
    model: str | None = None
    latency_ms: float = 0.0
    outcome: Outcome = "success"
    error_class: str | None = None
    attempts: int = 1
    usage_estimated: bool = False
    may_have_been_billed: bool = False
    """True when a call timed out or was cut off after the provider may already have done the
    work: the provider may bill tokens this record cannot know."""
    request_id: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    cache_hit: bool = False
    """True when the answer came from the response cache: cost 0, the tokens are those of the
    cached answer (not billed again; sum tokens where ``cache_hit`` is True for tokens saved)."""
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        if self.cost is not None and not isinstance(self.cost, Decimal):
            object.__setattr__(self, "cost", _to_decimal("cost", self.cost))
        # What a database column or jsonb cannot hold is refused here, not lost at write time.
        object.__setattr__(self, "metadata", check_metadata(self.metadata))
        object.__setattr__(self, "user_id", check_member_id(self.user_id, "user_id"))
        for name in ("prompt_tokens", "completion_tokens", "reasoning_tokens", "cached_tokens"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidEntryError(name, f"must be an integer >= 0, got {value!r}")

    @property
    def total_tokens(self) -> int:
        """Prompt, completion and reasoning tokens together."""
        return self.prompt_tokens + self.completion_tokens + self.reasoning_tokens

    @property
    def timestamp(self) -> datetime:
        """When the call was recorded: the original package's name for :attr:`created_at`."""
        return self.created_at
