"""Remove credentials from any text before it leaves the runner.

Messages from drivers, tools and exceptions may echo the connection string; nothing that
reaches the termination message, stdout or stderr may contain a user's password.
"""

import re
from urllib.parse import unquote, urlsplit

_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<userinfo>[^/@\s]*)@")
_PASSWORD_PARAM = re.compile(r"(?i)(password|pwd)=([^&\s;]+)")
MASK = "***"


def password_of(uri: str) -> str | None:
    """The password written in ``uri`` (decoded), or None when it has none."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return None
    return unquote(parts.password) if parts.password else None


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """``text`` with URI user info, password parameters and the given literals masked."""
    out = _USERINFO.sub(lambda m: f"{m.group('scheme')}{MASK}@", text)
    out = _PASSWORD_PARAM.sub(lambda m: f"{m.group(1)}={MASK}", out)
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        out = out.replace(secret, MASK)
    return out


def secrets_of(uri: str) -> tuple[str, ...]:
    """Literals to mask for ``uri``: the password, raw and URL-decoded."""
    try:
        raw = urlsplit(uri).password
    except ValueError:
        raw = None
    decoded = password_of(uri)
    return tuple(s for s in {raw, decoded} if s)


def one_line(text: str, limit: int = 600) -> str:
    """Collapse whitespace so a message fits on one line, cut at ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
