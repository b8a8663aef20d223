"""Everything a sandbox run can be configured with (CLI flags map one to one onto this)."""

from __future__ import annotations

from dataclasses import dataclass

DEMO_CLIENT_ID = "sandbox-client"
DEMO_CLIENT_SECRET = "sandbox-secret"
DEMO_REDIRECT_URIS = ("http://localhost:8080/callback", "http://127.0.0.1:8080/callback")
SEED_NAMES = ("default", "minimal", "large")
LARGE_SEED_VOUCHERS = 200_000


@dataclass(frozen=True)
class SandboxOptions:
    """Seed, sizes, OAuth client and limits of one sandbox run."""

    seed: str = "default"
    years: tuple[int, ...] = (2024, 2025, 2026)
    vouchers_per_year: int = 240
    invoices_per_year: int = 40
    supplier_invoices_per_year: int = 30
    large_year_vouchers: int = LARGE_SEED_VOUCHERS
    #: Whether general vouchers get documents (file connections); without, the same books
    #: and SIE files, no connection to list.
    voucher_files: bool = True
    client_id: str = DEMO_CLIENT_ID
    client_secret: str = DEMO_CLIENT_SECRET
    redirect_uris: tuple[str, ...] = DEMO_REDIRECT_URIS
    rate_limit: int = 25
    rate_window_seconds: float = 5.0
    access_token_seconds: int = 3600
    refresh_token_days: int = 45
    code_seconds: int = 600
    sie_chunk_bytes: int = 64 * 1024
