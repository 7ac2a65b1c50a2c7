"""Benchmark harness: the service against a bare baseline and obvious Pony."""
