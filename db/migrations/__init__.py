"""Versioned SQL migrations, engine-neutral: files, the runner, its commands.

files.py reads and checks the folder (each engine's rules in its
package), history.py compares it with the database's history, runner.py
applies what is pending through the engine's Backend
(db/engines/<engine>/migration_backend.py); plan, lint and baseline are
the commands built on them, scratch.py the empty databases they use.
"""
