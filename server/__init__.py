"""The gRPC process: configuration, telemetry, interceptors, servicer and the composition root."""

from server import native

native.choose()  # before `server.record_wire` is imported: never its stale compiled build
