"""The domain: models, ports and use cases. Imports no gRPC, HTTP or SQLite code."""
