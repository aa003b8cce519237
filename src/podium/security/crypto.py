"""Encryption at rest: envelope encryption with AES-256-GCM.

A **master key** (32 random bytes) never encrypts data itself: it wraps **data keys**, one per
run (and one per data subject, and one for the reply cache), which encrypt the journal's
payloads. The wrapped data keys live in the store next to the data; the master key lives
outside it, in `PODIUM_MASTER_KEY` or a key file. Rotating the master key re-wraps the data
keys and re-encrypts no data; destroying a data key makes everything it encrypted
unreadable (crypto-shredding).

Where the master key comes from, first found wins:

1. `PODIUM_MASTER_KEY`: the key as hex (64 digits) or base64; several keys may be given,
   separated by commas, the first being the one new data keys are wrapped with;
2. `PODIUM_MASTER_KEY_FILE`: a file holding the key(s), one a line;
3. `$PODIUM_HOME/master.key`, if it exists (`podium keys init` makes one).

Every ciphertext carries a format version and the id of its data key, and is bound to where
it lives by associated data (for a journal event: the run id, the event's sequence number
and the field), so a ciphertext copied into another row does not decrypt.

Ciphertext layout (version 1)::

    0x01 | data key id (4 bytes, big-endian) | nonce (12) | AES-GCM ciphertext and tag (16)

A sealed value of version 0 (`0x00` and the plaintext) is what a store without a master key
keeps where a sealed value is expected.

Errors::

    PodiumError
    ├── UserError
    │   └── KeyConfigError      a master key is missing, malformed or not the journal's
    └── DecryptError            a ciphertext does not decrypt: moved, altered or wrong key
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import os
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from podium import config
from podium.errors import DecryptError as DecryptError
from podium.errors import KeyConfigError as KeyConfigError

KEY_ENV = "PODIUM_MASTER_KEY"
"""The environment variable holding the master key(s), as hex or base64."""
KEY_FILE_ENV = "PODIUM_MASTER_KEY_FILE"
"""The environment variable naming a file that holds the master key(s)."""
KEY_FILE = "master.key"
"""The master key file in `$PODIUM_HOME`, used when neither variable is set."""

VERSION = 1
"""The ciphertext format written today."""
CLEAR = 0
"""The format byte of a value kept in clear (no master key configured)."""
_HEADER = struct.Struct(">BI")
_LEN = struct.Struct(">I")
_INT = struct.Struct(">Iq")
_NONCE = 12
_TAG = 16
_HEX = re.compile(r"[0-9a-fA-F]{64}")


@dataclass(frozen=True, kw_only=True)
class MasterKey:
    """A 256-bit master key and the id that names it without revealing it."""

    secret: bytes = field(repr=False)
    """The 32 key bytes."""
    source: str = field(default="generated", compare=False)
    """Where it came from (an environment variable or a file), for messages."""

    def __post_init__(self) -> None:
        if len(self.secret) != 32:
            raise KeyConfigError(f"{self.source}: a master key is 32 bytes (AES-256), this one "
                                 f"has {len(self.secret)}; make one with `podium keys init`")

    @property
    def key_id(self) -> str:
        """16 hex digits derived from the key (an HMAC, so it says nothing of the key)."""
        return hmac.new(self.secret, b"podium master key id", hashlib.sha256).hexdigest()[:16]

    @classmethod
    def generate(cls) -> MasterKey:
        """A fresh random key."""
        return cls(secret=AESGCM.generate_key(bit_length=256))

    @classmethod
    def parse(cls, text: str, *, source: str) -> MasterKey:
        """A key written as 64 hex digits or base64 of 32 bytes."""
        text = text.strip()
        try:
            secret = (bytes.fromhex(text) if _HEX.fullmatch(text)
                      else base64.b64decode(text, validate=True))
        except (ValueError, binascii.Error):
            raise KeyConfigError(f"{source}: the master key is neither 64 hex digits nor "
                                 "base64; make one with `podium keys init`") from None
        return cls(secret=secret, source=source)

    def text(self) -> str:
        """The key as 64 hex digits, as a key file holds it."""
        return self.secret.hex()


@dataclass(frozen=True, kw_only=True)
class Keyring:
    """The master keys a process holds: the first wraps new data keys (unless the journal
    says another of them is current); any of them unwraps."""

    keys: tuple[MasterKey, ...]

    def __post_init__(self) -> None:
        if not self.keys:
            raise KeyConfigError("a keyring needs at least one master key")

    @property
    def primary(self) -> MasterKey:
        return self.keys[0]

    def get(self, key_id: str) -> MasterKey | None:
        """The key with this id, or None."""
        return next((k for k in self.keys if k.key_id == key_id), None)

    def ids(self) -> list[str]:
        return [k.key_id for k in self.keys]


def _parse_many(text: str, *, source: str, separator: str) -> Keyring:
    parts = [p.strip() for p in text.split(separator)]
    parts = [p for p in parts if p and not p.startswith("#")]
    keys = tuple(MasterKey.parse(p, source=f"{source} (key {i + 1})" if len(parts) > 1
                                 else source)
                 for i, p in enumerate(parts))
    if not keys:
        raise KeyConfigError(f"{source}: holds no key; make one with `podium keys init`")
    return Keyring(keys=keys)


def read_key_file(path: Path) -> Keyring:
    """The keys in a key file, one a line (blank lines and `#` comments skipped)."""
    try:
        text = path.read_text()
    except OSError as e:
        raise KeyConfigError(f"{path}: cannot read the master key file: {e.strerror}") from None
    return _parse_many(text, source=str(path), separator="\n")


def write_key_file(path: Path, key: MasterKey) -> None:
    """Write `key` to a new key file at `path`, readable by its owner only (mode 0600); a
    file already at `path` is left as it is (the first writer wins)."""
    from podium.security._audit_keys import _create_private

    _create_private(path, (key.text() + "\n").encode())


def load_keyring(environ: Mapping[str, str] | None = None) -> Keyring | None:
    """The master keys configured for this process, or None when none is (data is then
    stored unencrypted, and Podium says so)."""
    env = os.environ if environ is None else environ
    if env.get(KEY_ENV, "").strip():
        return _parse_many(env[KEY_ENV], source=KEY_ENV, separator=",")
    if env.get(KEY_FILE_ENV, "").strip():
        return read_key_file(Path(env[KEY_FILE_ENV]))
    default = default_key_file(env)
    return read_key_file(default) if default.exists() else None


def default_key_file(environ: Mapping[str, str] | None = None) -> Path:
    """`$PODIUM_HOME/master.key`."""
    env = os.environ if environ is None else environ
    home = env.get("PODIUM_HOME")
    return (Path(home) if home else config.home()) / KEY_FILE


# -- data keys --------------------------------------------------------------------------------


def context(*parts: str | int) -> bytes:
    """Associated data naming where a ciphertext lives (each part length-prefixed, so that
    no two different lists of parts give the same bytes)."""
    return b"podium/v1" + b"".join(_part(p) if isinstance(p, str) else _INT.pack(8, p)
                                   for p in parts)


@functools.lru_cache(maxsize=4096)
def _part(text: str) -> bytes:
    raw = text.encode()
    return _LEN.pack(len(raw)) + raw


def new_data_key() -> bytes:
    """A fresh 256-bit data key."""
    return AESGCM.generate_key(bit_length=256)


def wrap(master: MasterKey, data_key: bytes, owner: str) -> bytes:
    """`data_key` encrypted under `master` (AES-256-GCM), bound to what it is the key of."""
    nonce = os.urandom(_NONCE)
    return nonce + AESGCM(master.secret).encrypt(nonce, data_key, context("data key", owner))


def unwrap(master: MasterKey, wrapped: bytes, owner: str) -> bytes:
    """The data key `wrap` wrapped for `owner`.

    Raises:
        DecryptError: `master` is not the key it was wrapped with, or the row was altered.
    """
    try:
        return AESGCM(master.secret).decrypt(wrapped[:_NONCE], wrapped[_NONCE:],
                                             context("data key", owner))
    except InvalidTag:
        raise DecryptError(f"the data key of {owner} does not unwrap under master key "
                           f"{master.key_id}: the row was altered or moved") from None


@dataclass(frozen=True)
class DataKey:
    """An unwrapped data key and its id in the store."""

    key_id: int
    aead: AESGCM = field(repr=False)
    mac_key: bytes = field(default=b"", repr=False)
    """A key derived from the data key for the keyed checksums of journal rows
    (`podium.store._sums`): never the AES key itself."""

    @classmethod
    def of(cls, key_id: int, secret: bytes) -> DataKey:
        mac_key = hashlib.blake2b(b"podium journal row checksum", key=secret,
                                  digest_size=32).digest()
        return cls(key_id, AESGCM(secret), mac_key)


def seal(key: DataKey, plain: bytes, where: bytes) -> bytes:
    """`plain` encrypted under `key`, bound to `where` (see `context`)."""
    header = _HEADER.pack(VERSION, key.key_id)
    nonce = os.urandom(_NONCE)
    return header + nonce + key.aead.encrypt(nonce, plain, header + where)


def sealed_key_id(blob: bytes, *, what: str) -> int:
    """The id of the data key a version-1 ciphertext was sealed with.

    Raises:
        DecryptError: not a ciphertext of a format this Podium reads.
    """
    if len(blob) < _HEADER.size + _NONCE + _TAG or blob[0] != VERSION:
        version = blob[0] if blob else None
        raise DecryptError(f"{what}: not a Podium ciphertext this version reads (format "
                           f"{version!r}, {len(blob)} bytes)")
    key_id: int = _HEADER.unpack_from(blob)[1]
    return key_id


def unseal(key: DataKey, blob: bytes, where: bytes, *, what: str) -> bytes:
    """The plaintext `seal` sealed at `where`.

    Raises:
        DecryptError: the ciphertext was sealed for another place (a moved row), altered,
            or under another key; the message names `what` was being read.
    """
    header = blob[: _HEADER.size]
    try:
        return key.aead.decrypt(blob[_HEADER.size : _HEADER.size + _NONCE],
                                blob[_HEADER.size + _NONCE :], header + where)
    except InvalidTag:
        raise DecryptError(f"{what} does not decrypt: it was written for another row (moved), "
                           "altered, or under another key") from None


__all__ = [
    "CLEAR",
    "KEY_ENV",
    "KEY_FILE",
    "KEY_FILE_ENV",
    "VERSION",
    "DataKey",
    "DecryptError",
    "KeyConfigError",
    "Keyring",
    "MasterKey",
    "context",
    "default_key_file",
    "load_keyring",
    "new_data_key",
    "read_key_file",
    "seal",
    "sealed_key_id",
    "unseal",
    "unwrap",
    "wrap",
]
