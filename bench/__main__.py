"""Entry point: python -m bench [micro] [options]."""

from bench.cli import main

raise SystemExit(main())
