"""HTTP service on Falcon 4 + waitress over the db package."""

from importlib import metadata


def _version() -> str:
    """The installed distribution's version: pyproject.toml is its one source."""
    try:
        return metadata.version("service-foundation")
    except metadata.PackageNotFoundError:
        # Run from a checkout that was never installed (a Nix dev shell puts the
        # tree on PYTHONPATH): read the same field from the source.
        import tomllib
        from pathlib import Path

        pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
        with pyproject.open("rb") as f:
            return str(tomllib.load(f)["project"]["version"])


__version__ = _version()
