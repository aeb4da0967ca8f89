"""Inspection codes (检查码, 扫码入企): a signed token an enterprise can check.

Token = "ZFJC1." + base64url(canonical JSON claims) + "." + base64url(Ed25519 signature of the
claims bytes). The claims are exactly what shows the inspection's legality — the department and
agency, the officers with the credential each acts under, the items, the approval and the time
window — and nothing else (no enterprise data, no outcome, no findings). Ed25519 means anyone
holding the suite's *public* key (published by the public query `inspection_code_key`) can check
a code offline; only the suite, holding the private key (setting `INSPECTION_CODE_KEY`, 32 bytes
as hex), can make one. Signatures are deterministic: the same inspection always gives the same code.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any, Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

PREFIX = "ZFJC1"
CLAIM_KEYS = ("v", "inspection_id", "dept", "agency_id", "officers", "items", "approval", "from", "to")


class CodeError(ValueError):
    """A code that is malformed or whose signature does not verify (Chinese message)."""

    def __init__(self, message: str, code: str = "invalid_code"):
        super().__init__(message)
        self.code = code


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def private_key(secret: str) -> Ed25519PrivateKey:
    """The signing key from a 64-hex-digit seed, or (development) derived from any other secret text."""
    try:
        seed = bytes.fromhex(secret) if len(secret) == 64 else None
    except ValueError:
        seed = None
    if seed is None:
        seed = hashlib.sha256(("zhifa-inspection-code-v1:" + secret).encode("utf-8")).digest()
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_key_hex(key: Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def claims_bytes(claims: Mapping[str, Any]) -> bytes:
    return json.dumps(dict(claims), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sign(claims: Mapping[str, Any], key: Ed25519PrivateKey) -> str:
    unknown = set(claims) - set(CLAIM_KEYS)
    if unknown:
        raise ValueError(f"claims outside the legality view: {sorted(unknown)}")
    body = claims_bytes(claims)
    return f"{PREFIX}.{_b64(body)}.{_b64(key.sign(body))}"


def verify(token: str, public_key: bytes | str) -> dict[str, Any]:
    """The claims of a genuine code; CodeError if malformed or not signed by the key."""
    if not isinstance(token, str) or token.count(".") != 2 or not token.startswith(PREFIX + "."):
        raise CodeError("检查码格式不正确", "malformed_code")
    _, body_text, sig_text = token.split(".")
    try:
        body, sig = _unb64(body_text), _unb64(sig_text)
    except (binascii.Error, ValueError):
        raise CodeError("检查码格式不正确", "malformed_code") from None
    raw = bytes.fromhex(public_key) if isinstance(public_key, str) else public_key
    try:
        Ed25519PublicKey.from_public_bytes(raw).verify(sig, body)
    except (InvalidSignature, ValueError):
        raise CodeError("检查码签名无效：不是本平台签发，或内容被改动", "bad_signature") from None
    try:
        claims = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CodeError("检查码内容无法解析", "malformed_code") from None
    if not isinstance(claims, dict) or set(claims) - set(CLAIM_KEYS):
        raise CodeError("检查码内容不符合格式", "malformed_code")
    return claims
