"""Security and compliance: the tamper-evident audit log (`AuditLog`)."""

from podium.security.audit import (
    AuditKeyMismatch,
    AuditLog,
    AuditRecord,
    Finding,
    FindingKind,
    SignedHead,
    VerifyReport,
)

__all__ = [
    "AuditKeyMismatch",
    "AuditLog",
    "AuditRecord",
    "Finding",
    "FindingKind",
    "SignedHead",
    "VerifyReport",
]
