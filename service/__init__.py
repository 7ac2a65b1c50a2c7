"""HTTP service on Falcon 4 + waitress over the db package."""

__version__ = "0.1.0"
