"""Security and compliance: the tamper-evident audit log (`AuditLog`) and personal data
masked before it leaves (`Masker`, `MaskingPolicy`, `Vault`)."""

from podium.security.audit import (
    AuditKeyMismatch,
    AuditLog,
    AuditRecord,
    Finding,
    FindingKind,
    SignedHead,
    VerifyReport,
)
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

__all__ = [
    "AuditKeyMismatch",
    "AuditLog",
    "AuditRecord",
    "Finding",
    "FindingKind",
    "MaskedSpan",
    "MaskedText",
    "Masker",
    "MaskingPolicy",
    "PolicyError",
    "SignedHead",
    "UnmaskError",
    "UnmaskResult",
    "Vault",
    "VaultError",
    "VerifyReport",
]
