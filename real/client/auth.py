"""Shared-secret tokens for the inference server: read from a file or ``MANIP_SERVER_TOKEN``."""

from __future__ import annotations

import os
from pathlib import Path

from manip.core.errors import ManipError

TOKEN_ENV = "MANIP_SERVER_TOKEN"


def read_token(token_file: str | Path | None = None) -> str | None:
    """The token from ``token_file`` (first line, stripped) or else the environment; None when neither is set."""
    if token_file is not None:
        path = Path(token_file)
        if not path.is_file():
            raise ManipError(f"{path}: no such token file")
        token = path.read_text().strip().splitlines()[0].strip() if path.read_text().strip() else ""
        if not token:
            raise ManipError(f"{path}: the token file is empty")
        return token
    return os.environ.get(TOKEN_ENV) or None


def auth_header(token: str | None) -> dict[str, str]:
    """The HTTP header a client sends on connect (empty without a token)."""
    return {"Authorization": f"Bearer {token}"} if token else {}
