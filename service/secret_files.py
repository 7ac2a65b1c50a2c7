"""Secrets read from files: SERVICE_ADMIN_TOKEN_FILE, SERVICE_DATABASE_URL_FILE.

Docker and Kubernetes hand secrets to a container as files (/run/secrets/NAME)
rather than environment variables, which `docker inspect` and child processes
can see. Each file is read once, at start.
"""

from __future__ import annotations

MAX_SECRET_FILE_BYTES = 65_536


class SecretFileError(Exception):
    """The file cannot serve as the secret; str() names the path, never the content."""


def read_secret_file(path: str) -> str:
    """The secret in the file at path, without its trailing newline."""
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_SECRET_FILE_BYTES + 1)
    except OSError as ex:
        raise SecretFileError(f"cannot read {path}: {ex.strerror}") from ex
    if len(data) > MAX_SECRET_FILE_BYTES:
        raise SecretFileError(
            f"{path} is larger than {MAX_SECRET_FILE_BYTES} bytes; is it the right file?"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as ex:
        raise SecretFileError(f"{path} is not UTF-8 text") from ex
    # `echo secret > file`, and most editors, end the file with a newline.
    value = text.rstrip("\r\n")
    if not value:
        raise SecretFileError(f"{path} is empty")
    return value
