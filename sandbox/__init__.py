"""A local stand-in for Fortnox (OAuth service and REST API v3) for tests, demos and development.

The service never imports this package and this package imports nothing of the service: it is
an independent producer, like real Fortnox. Start it with ``python -m sandbox`` or
``fortnox-bridge sandbox``; tests use :func:`sandbox.testing.running_sandbox`.

Here a *tenant* is what Fortnox calls one: a Fortnox company, named by its ``TenantId``
(``tenant_id``). It is not the service's tenant, the Skatt & Bokslut company a caller names.
"""
