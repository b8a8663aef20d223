"""What tests of every folder share: a sandbox process, a PostgreSQL server, the service in this
process or as processes, connecting a tenant, vouchers, error details, a small disk, metrics
and the SIE files. Nothing here is a test; no test folder imports another's helpers."""
