"""API keys encrypted at rest: Fernet (AES-128-CBC + HMAC-SHA256), keyed by a KDF of a secret.

New values are encrypted with ``CREATIVE_SERVICES_ENCRYPTION_KEY`` when set (its first secret, if
a list), else with Django's ``SECRET_KEY``. Every other secret only decrypts: older ones of the
list, ``SECRET_KEY`` and ``SECRET_KEY_FALLBACKS`` (also once ``CREATIVE_SERVICES_ENCRYPTION_KEY``
is set, so adding it strands no stored key). Keys can thus be rotated: re-save the rows to
encrypt them with the newest secret. Stored values look like ``fernet:gAAAA...``; a value
without that prefix is taken as plain text (an imported legacy row) and encrypted on next save.
"""

from __future__ import annotations

import base64
import functools
from typing import Any

from django.db import models

from creative_services.contrib.django.conf import conf

__all__ = ["PREFIX", "EncryptedTextField", "UndecryptableKey", "decrypt", "encrypt"]

PREFIX = "fernet:"
_SALT = b"creative-services/api-key/v1"


class UndecryptableKey(str):
    """The value of a stored key that no configured secret decrypts: an empty string.

    ``stored`` keeps the ciphertext, so saving the row again does not lose it.
    """

    stored: str

    def __new__(cls, stored: str) -> UndecryptableKey:
        self = super().__new__(cls, "")
        self.stored = stored
        return self


@functools.lru_cache(maxsize=8)
def _fernet(secrets: tuple[str, ...]) -> Any:
    from cryptography.fernet import Fernet, MultiFernet
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    keys = []
    for secret in secrets:
        kdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT, info=b"fernet")
        keys.append(Fernet(base64.urlsafe_b64encode(kdf.derive(secret.encode()))))
    return MultiFernet(keys)


def encrypt(plain: str) -> str:
    """The stored form of ``plain`` (``""`` stays ``""``; stored forms pass unchanged)."""
    if not plain or plain.startswith(PREFIX):
        return plain
    token: bytes = _fernet(tuple(conf.ENCRYPTION_KEYS)).encrypt(plain.encode())
    return PREFIX + token.decode("ascii")


def decrypt(stored: str) -> str:
    """The plain key of a stored value; :class:`UndecryptableKey` when no secret fits."""
    if not stored.startswith(PREFIX):
        return stored
    from cryptography.fernet import InvalidToken

    try:
        plain: bytes = _fernet(tuple(conf.ENCRYPTION_KEYS)).decrypt(stored[len(PREFIX) :])
    except (InvalidToken, ValueError):
        return UndecryptableKey(stored)
    return plain.decode()


class EncryptedTextField(models.TextField):
    """A text field whose value is encrypted in the database and plain in Python.

    Lookups on it cannot match (each encryption differs); serialisation (``dumpdata``) writes the
    encrypted form.
    """

    description = "Text encrypted at rest"

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> str | None:
        """Decrypt what the database holds."""
        return None if value is None else decrypt(value)

    def get_prep_value(self, value: Any) -> Any:
        """Encrypt what Python holds (an undecryptable value keeps its old ciphertext)."""
        if isinstance(value, UndecryptableKey):
            return value.stored
        value = super().get_prep_value(value)
        return value if value is None else encrypt(str(value))

    def value_to_string(self, obj: Any) -> str:
        """The encrypted form, so fixtures never hold a key in clear."""
        value = self.value_from_object(obj)
        return "" if value is None else str(self.get_prep_value(value))
