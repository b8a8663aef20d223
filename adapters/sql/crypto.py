"""Tokens at rest: AES-GCM with a random nonce, bound to the tenant and column they belong to."""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core.errors import StoredTokenUnreadable

_NONCE_BYTES = 12


class TokenCipher:
    """Encrypts and decrypts token strings with a 32-byte key.

    The associated data names the tenant and the column, so a blob copied to another row or
    column fails to decrypt instead of silently becoming another tenant's token.
    """

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the token key must be 32 bytes")
        self._aead = AESGCM(key)

    def encrypt(self, plaintext: str, tenant: str, column: str) -> bytes:
        """``nonce || ciphertext+tag`` of ``plaintext``."""
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext.encode(), _aad(tenant, column))

    def decrypt(self, blob: bytes, tenant: str, column: str) -> str:
        """The plaintext of a blob made by :meth:`encrypt` for the same tenant and column;
        ``StoredTokenUnreadable`` when it cannot be decrypted (PostgreSQL's store uses this
        cipher too)."""
        try:
            data = self._aead.decrypt(
                blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], _aad(tenant, column)
            )
        except InvalidTag:  # wrong key, or the blob was moved or altered: a reason of its own
            raise StoredTokenUnreadable(
                "The tenant's stored Fortnox tokens cannot be decrypted (the service's token"
                " key is not the one they were stored with, or the row was altered); connect"
                " again.", metadata={"column": column}) from None
        return data.decode()


def _aad(tenant: str, column: str) -> bytes:
    return f"fortnox-bridge/{column}/{tenant}".encode()
