"""Benchmark harness: the service against a bare Falcon + sqlite3 baseline."""
