"""Fortnox over HTTP: OAuth and tokens, the rate limit, retries, typed resources, downloads."""

from adapters.fortnox.adapter import FortnoxAdapter, FortnoxSettings
from adapters.fortnox.api import FortnoxClient
from adapters.fortnox.connector import FortnoxConnector

__all__ = ["FortnoxAdapter", "FortnoxClient", "FortnoxConnector", "FortnoxSettings"]
