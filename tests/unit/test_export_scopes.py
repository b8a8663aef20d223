"""The scopes a connection asks for by default cover every call an export makes."""

from __future__ import annotations

from server.config import DEFAULT_SCOPES, load_settings


def test_default_scopes_let_an_export_check_everything_before_posting() -> None:
    needed = {"companyinformation", "bookkeeping", "settings", "costcenter", "project"}
    assert needed <= set(DEFAULT_SCOPES)
    settings = load_settings({"FORTNOX_CLIENT_ID": "id", "FORTNOX_CLIENT_SECRET": "secret",
                              "FORTNOX_TOKEN_KEY": "A" * 43 + "=",
                              "FORTNOX_BRIDGE_ENV": "development"})
    assert needed <= set(settings.default_scopes)
