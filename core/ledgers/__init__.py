"""ImportLedgers: open customer and supplier items at a balance date, reconciled."""
