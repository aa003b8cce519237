"""The audit log's keys: the HMAC key that chains records, the Ed25519 key that signs heads.

Key files are created once, readable by their owner only (0600), and atomically: a key is
written to a private temporary file and hard-linked into place, so two processes starting
at once agree on one key and no reader ever sees half a key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from podium import config
from podium.errors import UserError
from podium.sqlite_files import private_folder, warn_if_open

KEY_ENV = "PODIUM_AUDIT_KEY"
"""The environment variable that holds the HMAC key, as hex or base64."""
KEY_FILE_ENV = "PODIUM_AUDIT_KEY_FILE"
"""The environment variable naming the HMAC key file (when `PODIUM_AUDIT_KEY` is unset)."""
KEY_FILE = "audit.key"
"""The HMAC key file in `$PODIUM_HOME`, used when neither variable is set."""
SIGNING_KEY_ENV = "PODIUM_AUDIT_SIGNING_KEY_FILE"
"""The environment variable naming the Ed25519 private key file: keep it where the
journal's database is not (another folder, another OS user's, a mounted secret)."""
SIGNING_KEY_FILE = "audit_signing.key"
"""The Ed25519 private key file (PKCS#8 PEM) in `$PODIUM_HOME`, used when
`PODIUM_AUDIT_SIGNING_KEY_FILE` is unset."""
_MIN_KEY_BYTES = 16
_HEX = re.compile(r"[0-9a-fA-F]+")


def parse_key(text: str, *, source: str) -> bytes:
    """A key written as hex or base64; `source` names where it came from in errors."""
    text = text.strip()
    try:
        if _HEX.fullmatch(text) and len(text) % 2 == 0:
            key = bytes.fromhex(text)
        else:
            key = base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error) as e:
        raise UserError(f"{source}: the audit key is neither hex nor base64; generate one "
                        "with `python -c 'import secrets; print(secrets.token_hex(32))'`") from e
    if len(key) < _MIN_KEY_BYTES:
        raise UserError(f"{source}: the audit key has {len(key)} bytes; use at least "
                        f"{_MIN_KEY_BYTES} (32 recommended)")
    return key


def _create_private(path: Path, data: bytes) -> None:
    """Write `data` to `path` with mode 0600 unless `path` exists; first writer wins."""
    private_folder(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
    finally:
        tmp.unlink(missing_ok=True)


def load_audit_key(home: Path | None = None) -> bytes:
    """The HMAC key: `$PODIUM_AUDIT_KEY` if set, else the file `$PODIUM_AUDIT_KEY_FILE`,
    else `home/audit.key`; the file is created (0600) if missing.

    Args:
        home: the folder of the default key file; `$PODIUM_HOME` by default.
    """
    configured = os.environ.get(KEY_ENV)
    if configured:
        return parse_key(configured, source=f"${KEY_ENV}")
    named = os.environ.get(KEY_FILE_ENV)
    path = Path(named) if named else (home or config.home()) / KEY_FILE
    if not path.exists():
        _create_private(path, secrets.token_bytes(32).hex().encode() + b"\n")
    warn_if_open(path)
    return parse_key(path.read_text(), source=str(path))


def signing_key_path(home: Path | None = None) -> Path:
    """Where the Ed25519 private key lives: `$PODIUM_AUDIT_SIGNING_KEY_FILE`, else
    `$PODIUM_HOME/audit_signing.key`."""
    named = os.environ.get(SIGNING_KEY_ENV)
    return Path(named) if named else (home or config.home()) / SIGNING_KEY_FILE


def load_signing_key(path: Path, *, create: bool = True) -> Ed25519PrivateKey | None:
    """The Ed25519 private key at `path`; created (0600) if missing and `create`."""
    if not path.exists():
        if not create:
            return None
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption())
        _create_private(path, pem)
    warn_if_open(path)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise UserError(f"{path}: not an Ed25519 private key")
    return key


def public_key_pem(key: Ed25519PublicKey) -> bytes:
    """A public key as SubjectPublicKeyInfo PEM, to hand to auditors."""
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def load_public_key(data: bytes | str | Path) -> Ed25519PublicKey:
    """A public key from PEM bytes, a PEM file, or 32 raw bytes."""
    if isinstance(data, Path):
        data = data.read_bytes()
    if isinstance(data, str):
        data = data.encode()
    if len(data) == 32:
        return Ed25519PublicKey.from_public_bytes(data)
    key = serialization.load_pem_public_key(data)
    if not isinstance(key, Ed25519PublicKey):
        raise UserError("the audit public key is not an Ed25519 key")
    return key


def key_id(public: Ed25519PublicKey) -> str:
    """A short fingerprint of a public key (SHA-256 of its raw bytes, 16 hex digits)."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def hmac_key_id(key: bytes) -> str:
    """A fingerprint of the HMAC key that reveals nothing of it."""
    return hashlib.sha256(b"podium-audit-key-id\0" + key).hexdigest()[:16]
