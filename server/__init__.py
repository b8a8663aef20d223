"""The gRPC process: configuration, telemetry, interceptors, servicer and the composition root."""
