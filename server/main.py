"""``fortnox-bridge serve``: read the settings, wire the service, serve until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

from adapters import metrics as adapter_metrics
from adapters.sqlite import StoreError
from server.app import start_server
from server.config import ConfigError, Settings, load_settings, parse_address
from server.heap import freeze_startup
from server.logs import configure_logging
from server.telemetry import build_meter_provider, build_tracer_provider
from server.wiring import open_service

_log = logging.getLogger("fortnox_bridge.serve")

_DESCRIPTION = """\
Serve spiris.skattbokslut.fortnox.v1.FortnoxService over gRPC (with health and reflection).

Everything else is configured through environment variables (see README.md, "Configuration"):
FORTNOX_CLIENT_ID, FORTNOX_CLIENT_SECRET, FORTNOX_TOKEN_KEY, FORTNOX_REDIRECT_URIS,
FORTNOX_API_BASE_URL, FORTNOX_AUTH_BASE_URL, FORTNOX_BRIDGE_DB_PATH, FORTNOX_BRIDGE_ENV, ...
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fortnox-bridge serve",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--listen",
        metavar="HOST:PORT",
        help="address to listen on (overrides FORTNOX_BRIDGE_LISTEN; default [::]:50051; "
        "port 0 picks a free port)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Runs the service; returns the process exit code (2 for bad configuration)."""
    args = _parser().parse_args(argv)
    try:
        env = dict(os.environ)
        if args.listen is not None:
            parse_address(args.listen, "--listen")
            env["FORTNOX_BRIDGE_LISTEN"] = args.listen
        settings = load_settings(env)
    except ConfigError as exc:
        print(f"fortnox-bridge serve: configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    try:
        return asyncio.run(_serve(settings))
    except (ConfigError, StoreError) as exc:
        print(f"fortnox-bridge serve: configuration error: {_named(exc)}", file=sys.stderr)
        return 2


def _named(exc: Exception) -> str:
    if isinstance(exc, StoreError):
        return f"FORTNOX_BRIDGE_DB_PATH: {exc}"
    return str(exc)


async def _serve(settings: Settings) -> int:
    provider = build_tracer_provider(
        otlp_endpoint=settings.otlp_endpoint, console=settings.trace_console
    )
    meters = build_meter_provider(
        otlp_endpoint=settings.otlp_endpoint, console=settings.trace_console
    )
    adapter_metrics.use_meter_provider(meters)
    async with open_service(settings, provider) as servicer:
        running = await start_server(
            settings.listen, servicer, provider, settings.tls,
            meter_provider=meters, connection_age=settings.connection_age,
        )
        freeze_startup()
        host = settings.listen.host
        print(f"fortnox-bridge serving on {host}:{running.port}", flush=True)
        _log.info("serving", extra={"address": f"{host}:{running.port}"})
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        _log.info("draining", extra={"grace_s": settings.shutdown_grace_s})
        await running.drain(settings.shutdown_grace_s)
    provider.shutdown()
    meters.shutdown()
    _log.info("stopped")
    return 0
