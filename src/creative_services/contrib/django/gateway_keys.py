"""Virtual keys of the gateway in the project's database (:class:`GatewayKey`), shared by every
gateway worker and host that uses the database; managed in the admin and with
``manage.py creative_services_keys``."""

from __future__ import annotations

import datetime as dt
from typing import Any

from creative_services.gateway.keys import BaseKeyStore, VirtualKey

__all__ = ["DjangoKeyStore"]


def _stamp(value: float | None) -> dt.datetime | None:
    return None if value is None else dt.datetime.fromtimestamp(value, dt.UTC)


def _seconds(value: dt.datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def _record(row: Any) -> VirtualKey:
    return VirtualKey(
        row.key_id, row.name, row.user_id, tuple(row.model_names or ()), row.created_at.timestamp(),
        _seconds(row.expires_at), _seconds(row.revoked_at),
    )  # fmt: skip


class DjangoKeyStore(BaseKeyStore):
    """Keys in the ``GatewayKey`` table of database ``using`` (default: the default one)."""

    def __init__(self, *, using: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.using = using

    def _rows(self) -> Any:
        from creative_services.contrib.django.gateway_models import GatewayKey

        return GatewayKey.objects.using(self.using) if self.using else GatewayKey.objects

    def _insert(self, record: VirtualKey, digest: str) -> None:
        self._rows().create(
            key_id=record.key_id, key_hash=digest, name=record.name, user_id=record.user_id,
            model_names=list(record.models), created_at=_stamp(record.created_at),
            expires_at=_stamp(record.expires_at),
        )  # fmt: skip

    def _fetch(self, digest: str) -> VirtualKey | None:
        row = self._rows().filter(key_hash=digest).first()
        return None if row is None else _record(row)

    def _all(self) -> list[VirtualKey]:
        return [_record(row) for row in self._rows().order_by("-created_at")]

    def _revoke(self, key_id: str, at: float) -> bool:
        rows = self._rows().filter(key_id=key_id, revoked_at=None)
        return bool(rows.update(revoked_at=_stamp(at)) == 1)
