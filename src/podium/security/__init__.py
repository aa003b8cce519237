"""Security and compliance: the tamper-evident audit log (`AuditLog`), personal data
masked before it leaves (`Masker`, `MaskingPolicy`, `Vault`), the master keys of
encryption at rest (`MasterKey`, `Keyring`; see `podium.security.crypto`), and access
control (`Policy`, `Principal`, `Decision`)."""

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
from podium.security.rbac import Decision, Policy, Principal, Rule

__all__ = [
    "AuditKeyMismatch",
    "AuditLog",
    "AuditRecord",
    "Decision",
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
    "Policy",
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
