"""Secret values (API keys, registration tokens, host credentials): made random, stored hashed.

Each secret carries 256 bits from ``secrets``; the database keeps only its SHA-256, which is safe
for high-entropy values (no password stretching needed) and lets a lookup use an index.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid

API_KEY_PREFIX = "epk_"
TOKEN_PREFIX = "eprt_"
CREDENTIAL_PREFIX = "ephc_"


def new_secret(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"
