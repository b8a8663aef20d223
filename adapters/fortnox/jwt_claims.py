"""What an access token's claims say: the Fortnox company it reaches (its ``tenantId``)."""

from __future__ import annotations

import base64
import binascii
import json


def jwt_tenant_id(access_token: str) -> str:
    """Fortnox's tenant id from the access token's claims ("" if absent); nothing is verified:
    the token came straight from the token endpoint over TLS."""
    parts = access_token.split(".")
    if len(parts) != 3:
        return ""
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError):
        return ""
    value = claims.get("tenantId") if isinstance(claims, dict) else None
    return "" if value is None else str(value)
