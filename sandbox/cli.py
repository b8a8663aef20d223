"""``fortnox-bridge sandbox`` / ``python -m sandbox``: run the sandbox from the command line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
from dataclasses import fields

from sandbox.control_routes import tenant_json
from sandbox.options import SEED_NAMES, SandboxOptions
from sandbox.server import bind, make_server
from sandbox.state import SandboxState

DEFAULT_LISTEN = "127.0.0.1:8099"


def _parser() -> argparse.ArgumentParser:
    d = SandboxOptions()
    p = argparse.ArgumentParser(
        prog="fortnox-bridge sandbox",
        description="A local Fortnox (OAuth + REST API v3 + SIE export) with seeded companies.",
    )
    p.add_argument("--listen", default=os.environ.get("FORTNOX_SANDBOX_LISTEN", DEFAULT_LISTEN),
                   help="HOST:PORT to listen on; port 0 picks a free one "
                        "(env FORTNOX_SANDBOX_LISTEN, default %(default)s)")
    p.add_argument("--seed", default=d.seed, choices=SEED_NAMES,
                   help="data set: default (3 companies, one with a July-June year and one "
                        "with a planted 1510 difference), minimal (1 small company), large "
                        "(1 company with --large-year-vouchers vouchers in its middle year)")
    p.add_argument("--years", default=",".join(map(str, d.years)),
                   help="first calendar year of each financial year (default %(default)s)")
    p.add_argument("--vouchers-per-year", type=int, default=d.vouchers_per_year,
                   help="general (series A) vouchers per company and year (default %(default)s)")
    p.add_argument("--invoices-per-year", type=int, default=d.invoices_per_year,
                   help="customer invoices per company and year (default %(default)s)")
    p.add_argument("--supplier-invoices-per-year", type=int,
                   default=d.supplier_invoices_per_year,
                   help="supplier invoices per company and year (default %(default)s)")
    p.add_argument("--large-year-vouchers", type=int, default=d.large_year_vouchers,
                   help="vouchers in the big year of --seed large (default %(default)s)")
    p.add_argument("--no-voucher-files", dest="voucher_files", action="store_false",
                   help="no documents connected to the general vouchers (the same books and "
                        "SIE files otherwise)")
    p.add_argument("--client-id", default=d.client_id, help="demo OAuth client id")
    p.add_argument("--client-secret", default=d.client_secret, help="demo OAuth client secret")
    p.add_argument("--redirect-uri", action="append", dest="redirect_uris",
                   help="allowed redirect URI (repeatable; default: "
                        + ", ".join(d.redirect_uris) + ")")
    p.add_argument("--rate-limit", type=int, default=d.rate_limit,
                   help="requests per window per (client, tenant) (default %(default)s)")
    p.add_argument("--rate-window", type=float, default=d.rate_window_seconds,
                   help="rate-limit sliding window in seconds (default %(default)s)")
    p.add_argument("--access-token-seconds", type=int, default=d.access_token_seconds,
                   help="access-token lifetime (default %(default)s)")
    p.add_argument("--refresh-token-days", type=int, default=d.refresh_token_days,
                   help="refresh-token lifetime (default %(default)s)")
    p.add_argument("--sie-chunk-bytes", type=int, default=d.sie_chunk_bytes,
                   help="size of the chunks a SIE export is streamed in (default %(default)s)")
    p.add_argument("--log-level", default="warning", help="uvicorn log level")
    return p


def options_from(args: argparse.Namespace) -> SandboxOptions:
    """Map parsed flags onto :class:`SandboxOptions`."""
    chosen = {
        "seed": args.seed,
        "years": tuple(int(y) for y in args.years.split(",")),
        "vouchers_per_year": args.vouchers_per_year,
        "invoices_per_year": args.invoices_per_year,
        "supplier_invoices_per_year": args.supplier_invoices_per_year,
        "large_year_vouchers": args.large_year_vouchers,
        "voucher_files": args.voucher_files,
        "client_id": args.client_id, "client_secret": args.client_secret,
        "rate_limit": args.rate_limit, "rate_window_seconds": args.rate_window,
        "access_token_seconds": args.access_token_seconds,
        "refresh_token_days": args.refresh_token_days, "sie_chunk_bytes": args.sie_chunk_bytes,
    }
    if args.redirect_uris:
        chosen["redirect_uris"] = tuple(args.redirect_uris)
    assert set(chosen) <= {f.name for f in fields(SandboxOptions)}
    return SandboxOptions(**chosen)


def main(argv: list[str] | None = None) -> int:
    """Parse flags, seed the companies, print where to connect, and serve until stopped."""
    args = _parser().parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    options = options_from(args)
    state = SandboxState(options)
    sock = bind(host, int(port))
    bound_port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    lines = [
        f"sandbox listening on http://{shown}:{bound_port}",
        f"FORTNOX_API_BASE_URL=http://{shown}:{bound_port}/3",
        f"FORTNOX_AUTH_BASE_URL=http://{shown}:{bound_port}/oauth-v1",
        f"client id: {options.client_id}",
        f"client secret: {options.client_secret}",
        f"redirect URIs: {' '.join(options.redirect_uris)}",
    ]
    for tenant in state.tenants():
        info = tenant_json(tenant)
        users = " or ".join(
            f"{u.login} ({'system administrator' if u.administrator else 'ordinary user'})"
            for u in tenant.users)
        lines.append(f"tenant {info['id']}: {info['name']} ({info['organisation_number']});"
                     f" log in as {users}"
                     + (" [planted reconciliation difference]" if tenant.planted else ""))
    lines.append(f"topics websocket: ws://{shown}:{bound_port}/topics-v1")
    for line in lines:
        print(line, flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(make_server(state, args.log_level).serve(sockets=[sock]))
    return 0
