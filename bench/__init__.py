"""Benchmarks: ``make bench`` runs every ``bench_*.py`` here, each in its own process."""
