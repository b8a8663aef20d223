"""Fortnox over HTTP: OAuth and tokens, the rate limit, retries, typed resources, downloads."""

from adapters.fortnox.adapter import FortnoxAdapter, FortnoxSettings
from adapters.fortnox.api import FortnoxClient
from adapters.fortnox.login import FortnoxLogin

__all__ = ["FortnoxAdapter", "FortnoxClient", "FortnoxLogin", "FortnoxSettings"]
