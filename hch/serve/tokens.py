"""The secrets in `hch serve`'s links: one per participant and one for the experimenter.

A token is `secrets.token_urlsafe(24)` (192 bits). Looking one up compares it with every known token in
constant time (`hmac.compare_digest`, no early exit), so response times say nothing about how close a guess
was. Tokens live only in the server's state database (file mode 0600) and in the links printed at start:
never in traces, caches or logs (participants appear in traces under a pseudonymous id).
"""

from __future__ import annotations

import hmac
import re
import secrets

TOKEN_BYTES = 24
SHAPE = re.compile(r"[A-Za-z0-9_-]{16,128}")
"""What a token may look like; anything else is refused before any comparison."""


def new_token() -> str:
    """A fresh secret for a link."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def find(token: str, known: dict[str, str]) -> str | None:
    """The owner of `token` among `known` (owner -> token), compared in constant time; None if nobody's."""
    if not SHAPE.fullmatch(token):
        return None
    given = token.encode()
    found = None
    for owner, secret in known.items():
        if hmac.compare_digest(given, secret.encode()):
            found = owner  # no break: every token is compared, whichever matches
    return found
