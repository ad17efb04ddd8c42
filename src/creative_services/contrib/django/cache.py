"""DjangoResponseCache: the response cache over one of Django's ``CACHES`` (Redis, Memcached)."""

from __future__ import annotations

from typing import Any

from creative_services.cache import CachedAnswer, _check_ttl

__all__ = ["DjangoResponseCache"]


class DjangoResponseCache:
    """Keeps answers in ``django.core.cache.caches[alias]``, as JSON text, for ``ttl`` seconds.

    ``ttl=None`` keeps them until the backend evicts them. With a shared backend (Redis,
    Memcached, the database cache) every process and server shares the answers; ``locmem`` is
    per process. ``key_prefix`` is added before the library's own key, inside the backend's
    ``KEY_PREFIX`` and ``VERSION``. The alias is looked up at each call, so
    ``override_settings(CACHES=...)`` works. An entry that cannot be read back (another
    version's, or not ours) counts as a miss.

    ``DynamicLLMClient(registry, cache=DjangoResponseCache("redis", ttl=3600))``.
    """

    def __init__(
        self, alias: str = "default", *, ttl: float | None = 3600.0, key_prefix: str = "llm:"
    ) -> None:
        self.alias = alias
        self.ttl = _check_ttl(ttl, "ttl")
        self.key_prefix = key_prefix

    def __repr__(self) -> str:
        return f"DjangoResponseCache({self.alias!r}, ttl={self.ttl})"

    def _backend(self) -> Any:
        from django.core.cache import caches

        return caches[self.alias]

    async def aget(self, key: str) -> CachedAnswer | None:
        """The answer under ``key``, or None (missing, expired, or unreadable)."""
        return _decode(await self._backend().aget(self.key_prefix + key))

    async def aset(self, key: str, value: CachedAnswer, ttl: float | None = None) -> None:
        """Store ``value`` for ``ttl`` seconds (None: this cache's ``ttl``)."""
        life = self.ttl if ttl is None else _check_ttl(ttl, "ttl")
        await self._backend().aset(self.key_prefix + key, value.to_json(), timeout=life)

    def get(self, key: str) -> CachedAnswer | None:
        """Sync twin of :meth:`aget` (for scripts and management commands)."""
        return _decode(self._backend().get(self.key_prefix + key))

    def set(self, key: str, value: CachedAnswer, ttl: float | None = None) -> None:
        """Sync twin of :meth:`aset`."""
        life = self.ttl if ttl is None else _check_ttl(ttl, "ttl")
        self._backend().set(self.key_prefix + key, value.to_json(), timeout=life)

    async def adelete(self, key: str) -> None:
        """Forget the answer under ``key``."""
        await self._backend().adelete(self.key_prefix + key)


def _decode(text: object) -> CachedAnswer | None:
    """A stored value as an answer; None when missing or unreadable (a miss, never an error)."""
    if not isinstance(text, str | bytes):
        return None
    try:
        return CachedAnswer.from_json(text)
    except ValueError:
        return None
