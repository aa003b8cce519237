"""Security and compliance: the tamper-evident audit log (`AuditLog`), personal data
masked before it leaves (`Masker`, `MaskingPolicy`, `Vault`), the master keys of
encryption at rest (`MasterKey`, `Keyring`; see `podium.security.crypto`), and access
control (`AccessPolicy`, `Principal`, `AccessDecision`)."""

from podium.security.audit import (
    AuditKeyMismatch,
    AuditLog,
    AuditRecord,
    Finding,
    FindingKind,
    SignedHead,
    VerifyReport,
)
from podium.security.crypto import DecryptError, KeyConfigError, Keyring, MasterKey
from podium.security.masking import (
    MaskedSpan,
    MaskedText,
    Masker,
    MaskingPolicy,
    PolicyError,
    UnmaskError,
    UnmaskResult,
    Vault,
    VaultError,
)
from podium.security.rbac import AccessDecision, AccessPolicy, Principal, Rule

__all__ = [
    "AccessDecision",
    "AccessPolicy",
    "AuditKeyMismatch",
    "AuditLog",
    "AuditRecord",
    "DecryptError",
    "Finding",
    "FindingKind",
    "KeyConfigError",
    "Keyring",
    "MaskedSpan",
    "MaskedText",
    "Masker",
    "MaskingPolicy",
    "MasterKey",
    "PolicyError",
    "Principal",
    "Rule",
    "SignedHead",
    "UnmaskError",
    "UnmaskResult",
    "Vault",
    "VaultError",
    "VerifyReport",
]
