"""Versioned SQL migrations: files, the runner and its per-engine backends.

files.py reads and checks the folder, history.py compares it with the
database's history, runner.py applies what is pending through a
Backend (sqlite_backend.py, postgres_backend.py).
"""
