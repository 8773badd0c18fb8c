"""Secrets we must use later (gateway signing secrets, Prometheus credentials) are
stored encrypted with Fernet (AES-128-CBC + HMAC-SHA256).

The key comes from FIELD_ENCRYPTION_KEY (a Fernet key, or any string that is
stretched into one); without it, from SECRET_KEY. Rotating SECRET_KEY without
setting FIELD_ENCRYPTION_KEY to the old value makes stored secrets unreadable.
"""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings

from controlplane.env import env_str


class SecretUnreadable(Exception):
    """A stored secret cannot be decrypted with the current key."""


@lru_cache(maxsize=1)
def _fernet() -> Fernet:
    material = env_str("FIELD_ENCRYPTION_KEY") or settings.SECRET_KEY
    key = base64.urlsafe_b64encode(hashlib.sha256(("field-encryption:" + material).encode()).digest())
    return Fernet(key)


def encrypt_secret(plain: str) -> str:
    return _fernet().encrypt(plain.encode()).decode()


def decrypt_secret(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable("stored secret cannot be decrypted with the current key") from None
