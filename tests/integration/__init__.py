"""Integration tests: the Docker image, run with testcontainers over real HTTP."""
