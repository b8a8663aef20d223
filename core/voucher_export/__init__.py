"""ExportVouchers: year-end vouchers into Fortnox, each at most once, or as a SIE 4I file."""
