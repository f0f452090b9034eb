"""Credentials out of everything a policy writes down: one scrubber for every place text leaves
the LLM policy (its raw records, attempts, errors, actions and notes on stderr).

Two kinds of removal. The secrets the policy knows (its API key, the key in the environment
variable it reads, credentials a URL held) are replaced wherever they appear, also base64- or
URL-encoded, as `***`. And credential *forms* are replaced whatever their value: `Bearer X`,
`Basic X`, an `Authorization:`/`api-key:` header or JSON field a server echoes, tokens in a query
string (`?key=`, `&api_key=`, `?token=`, ...), and `user:pass@` in a URL.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

MASK = "***"
MIN_SECRET = 6
"""Shorter values are not replaced wherever they appear (a key of "x" would mangle all text);
the credential forms still catch them."""

SENSITIVE_FIELDS = frozenset({
    "authorization", "proxy-authorization", "api-key", "api_key", "apikey", "x-api-key", "openai-api-key",
    "cookie", "set-cookie", "x-goog-api-key", "access_token", "refresh_token", "password", "client_secret",
})
"""Names of fields (headers, JSON keys) whose value is a credential whatever it looks like (not `token`:
a reply's logprobs name each sampled token so)."""

_SCHEMES = re.compile(r"(?i)\b(bearer|basic)(\s+)(?!\*\*\*)[A-Za-z0-9._~+/=:-]{4,}")
_HEADER = re.compile(
    r"""(?ix)
    (["']?\b(?:proxy-)?authorization|["']?\b(?:x-|openai-)?api[-_]?key|["']?\bx-goog-api-key)
    (["']?\s*[:=]\s*["']?)
    ((?:bearer|basic|token)\s+)?
    (?!\*\*\*)([^\s"',;&}\]]+)
    """
)
_QUERY = re.compile(
    r"(?i)([?&;](?:api[-_]?key|key|token|access[-_]?token|auth|password|passwd|pwd|secret|sig|signature|"
    r"client[-_]?secret|code)=)([^&#\s\"'<>();,]+)"
)
_WHOLE_LINE = re.compile(
    r"(?i)(\b(?:set-)?cookie[\"']?\s*[:=]\s*[\"']?|\b(?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?digest\s+)"
    r"(?!\*\*\*)([^\r\n]+)"
)
"""Headers whose whole value is secret and holds `;`, `,` or spaces: cookies, Digest credentials."""
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s\"'<>]+@")


class Scrubber:
    """Replaces known secrets and every credential form in text and in nested data."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        found: set[str] = set()
        for secret in secrets:
            if secret and len(secret) >= MIN_SECRET:
                found.update(_encodings(secret))
        self._secrets = sorted(found, key=len, reverse=True)  # longest first: no part of one survives

    def text(self, text: str) -> str:
        """`text` with every secret and credential form replaced by `***`."""
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        text = _USERINFO.sub(rf"\1{MASK}@", text)
        text = _WHOLE_LINE.sub(rf"\1{MASK}", text)
        text = _HEADER.sub(rf"\1\2\3{MASK}", text)  # before the bare schemes: `Authorization: Bearer X`
        text = _SCHEMES.sub(rf"\1\2{MASK}", text)
        return _QUERY.sub(rf"\1{MASK}", text)

    def known(self, text: str) -> str:
        """`text` with only the known secrets replaced: for content that is data (a model's answer),
        where a credential *form* may be meant (`the Bearer token is ...`) but a key never is."""
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def data(self, value: Any, forms: bool = True) -> Any:
        """A copy of JSON-like `value` with every string scrubbed (`text`; only `known` secrets unless
        `forms`) and the values of credential fields (`authorization`, `api-key`, ...) replaced outright."""
        if isinstance(value, str):
            return self.text(value) if forms else self.known(value)
        if isinstance(value, dict):
            return {
                key: MASK if isinstance(key, str) and key.lower() in SENSITIVE_FIELDS and item
                else self.data(item, forms)
                for key, item in value.items()
            }
        if isinstance(value, list | tuple):
            return [self.data(item, forms) for item in value]
        return value


def _encodings(secret: str) -> set[str]:
    """The ways a secret shows up in text: as it is, URL-quoted, and base64-encoded (with and
    without padding); `Basic` auth in any other pairing is caught by its form."""
    forms = {secret, quote(secret, safe=""), base64.b64encode(secret.encode()).decode()}
    forms.add(base64.b64encode(secret.encode()).decode().rstrip("="))
    return {form for form in forms if len(form) >= MIN_SECRET}
