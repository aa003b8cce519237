"""Who acts, under which access policy, audited where: the trust model of every entry
point that acts for the person or service running it (the `podium` command, `podium mcp
serve`, and later `podium serve`).

Each entry point resolves these here, once (`open_access`):

- **Who.** The operating system's user: the name of the process's effective user id, not
  `$USER` or `$LOGNAME`, which any caller can set. `$PODIUM_PRINCIPAL` may name another
  principal only when the policy lets the OS user act as it (`act_as:` in one of its
  roles); each use is audited (`principal.act_as`), each refusal too (`policy.deny`).
  With no policy in force everything is allowed, acting as another included (audited).
- **Which policy.** An administrator's policy, when one is installed: `/etc/podium/policy.yaml`
  (`SYSTEM_POLICY`), else `$PODIUM_HOME/policy.yaml`. While one is in force, `--policy` or
  `$PODIUM_POLICY` naming another file is refused. With none installed, `--policy FILE` or
  `$PODIUM_POLICY` choose one; with none at all, everything is allowed (and `podium run`
  says so).
- **Audited where.** `$PODIUM_AUDIT`, else the journal's database, where `podium audit
  verify` looks. With an installed policy, `PODIUM_AUDIT=off` is refused, and an audit log
  moved elsewhere with `PODIUM_AUDIT=PATH` is recorded in the journal's own log
  (`audit.redirect`) before the command goes on.
"""

from __future__ import annotations

import getpass
import os
from pathlib import Path
from types import TracebackType

from podium import config
from podium.core.principal import Principal
from podium.engine.guard import Guard
from podium.errors import PermissionDenied, UserError
from podium.security.audit import AuditLog
from podium.security.rbac import AccessDecision, AccessPolicy
from podium.yaml import load_policy

__all__ = ["SYSTEM_POLICY", "Access", "installed_policy", "open_access", "os_user",
           "policy_file"]

SYSTEM_POLICY = Path("/etc/podium/policy.yaml")
"""The system-wide administrator's policy: it applies whatever the caller's environment."""


def os_user() -> str:
    """The name of the operating system's user this process runs as."""
    try:
        import pwd

        return pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError, AttributeError):  # Windows, or a uid with no passwd entry
        try:
            return getpass.getuser()
        except (OSError, KeyError):
            return f"uid-{os.geteuid()}" if hasattr(os, "geteuid") else "local"


def installed_policy() -> Path | None:
    """The administrator's policy file, if one is installed."""
    for file in (SYSTEM_POLICY, config.home() / "policy.yaml"):
        if file.is_file():
            return file
    return None


def _same(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:
        return False


def policy_file(given: Path | None) -> Path | None:
    """The policy file in force: the administrator's if installed, else the one given.

    Raises:
        UserError: another file is given while the administrator's is installed.
    """
    installed = installed_policy()
    if installed is not None and given is not None and not _same(given, installed):
        raise UserError(f"the access policy {str(installed)!r} is installed and in force; "
                        f"--policy or $PODIUM_POLICY ({str(given)!r}) cannot replace it: leave "
                        "them out, or ask its administrator to change it")
    return installed or given


class Access:
    """Who an entry point acts as, under which policy, audited where; an engine acting
    under it is `Engine(store, policy=access.policy, audit=access.audit)`.

    The audit log opens when first written to, so that a command that records nothing does
    not create a journal.
    """

    def __init__(self, *, policy: AccessPolicy | None, user: Principal, audit_at: Path | None,
                 audit_off: bool, installed: bool) -> None:
        self.policy = policy
        """The policy in force; None: everything is allowed."""
        self.user = user
        """The operating system's user, with the roles the policy gives it."""
        self.principal = user
        """Who the command acts for: the OS user, or whom it may act as."""
        self.installed = installed
        """Whether the policy is an administrator's (`installed_policy`)."""
        self._audit_at, self._off = audit_at, audit_off
        self._audit: AuditLog | None = None
        self._guard: Guard | None = None

    @property
    def audit(self) -> AuditLog | None:
        """The audit log, opened now if need be; None with `PODIUM_AUDIT=off`."""
        if self._audit is None and not self._off:
            self._audit = AuditLog(self._audit_at)
        return self._audit

    @property
    def guard(self) -> Guard:
        """The policy (or none: everything allowed) and the audit log, as the engine uses
        them."""
        if self._guard is None:
            self._guard = Guard(self.policy or AccessPolicy.unrestricted(), self.audit)
        return self._guard

    def check(self, action: str, resource: str, *, subject: str | None = None) -> AccessDecision:
        """Whether the principal may do `action` on `resource`; a denial is audited
        (`policy.deny`) and raised.

        Raises:
            PermissionDenied: the policy does not allow it.
        """
        return self.guard.check(self.principal, action, resource, subject=subject)

    def allows(self, action: str, resource: str) -> bool:
        """Whether the principal may do `action` on `resource` (nothing is recorded)."""
        return self.guard.policy.allows(self.principal, action, resource).allowed

    def record(self, action: str, subject: str, outcome: str = "ok", detail: str = "") -> None:
        """Append an audit record on behalf of the principal (if the audit log is on)."""
        self.guard.record(self.principal, action, subject, outcome, detail)

    def act_as(self, wanted: str) -> None:
        """Act for `wanted` from now on, if the policy lets the OS user; audited.

        Raises:
            PermissionDenied: it does not.
        """
        if wanted == self.user.id:
            return
        try:
            decision = self.guard.check(self.user, "principal:act_as", wanted)
        except PermissionDenied as e:
            raise PermissionDenied(f"$PODIUM_PRINCIPAL names {wanted!r}, but {e}; unset it to "
                                   f"act as yourself ({self.user.id!r})", principal=e.principal,
                                   action=e.action, resource=e.resource) from None
        self.guard.record(self.user, "principal.act_as", wanted,
                          detail=decision.rule or "no access policy in force")
        self.principal = (self.policy.principal(wanted) if self.policy is not None
                          else Principal(id=wanted))

    def close(self) -> None:
        """Close the audit log, if it was opened."""
        if self._audit is not None:
            self._audit.close()
            self._audit = None

    def __enter__(self) -> Access:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            self.close()
        except Exception:
            if exc is None:
                raise
            # The command failed already, most likely for the same reason (a full disk):
            # its error is the one to show.


def _audit_at(db: Path | None, installed: bool) -> tuple[Path | None, bool]:
    """Where the audit log is, and whether it is off.

    Raises:
        UserError: `PODIUM_AUDIT=off` under an administrator's policy.
    """
    off = config.audit_off()
    if off and installed:
        raise UserError("PODIUM_AUDIT=off: an administrator's access policy is in force, "
                        "and under it the audit log cannot be switched off; unset PODIUM_AUDIT")
    return config.audit_path(db), off


def _record_redirect(db: Path | None, audit_at: Path | None, user: Principal) -> None:
    """Under an administrator's policy, an audit log moved with `PODIUM_AUDIT=PATH` is
    recorded in the journal's own audit log, where the administrator looks."""
    if audit_at is None or (db is not None and _same(audit_at, db)):
        return
    default = db or config.database_path()
    if _same(audit_at, default):
        return
    with AuditLog(db) as log:
        Guard(AccessPolicy.unrestricted(), log).record(user, "audit.redirect", "PODIUM_AUDIT",
                                                 detail=str(audit_at))


def open_access(db: Path | None, given: Path | None) -> Access:
    """The access of the person or service running this process: policy, principal and
    audit log, for the journal `db` (None: the default one).

    Raises:
        PolicyFileError: the policy file is invalid.
        PermissionDenied: `$PODIUM_PRINCIPAL` names someone the OS user may not act as.
        UserError: the policy cannot be read or may not be replaced, the audit log may not
            be switched off, or its key does not match.
    """
    file = policy_file(given)
    installed = installed_policy() is not None
    policy = load_policy(file) if file is not None else None
    name = os_user()
    user = policy.principal(name) if policy is not None else Principal(id=name)
    audit_at, off = _audit_at(db, installed)
    if installed and os.environ.get("PODIUM_AUDIT"):
        _record_redirect(db, audit_at, user)
    access = Access(policy=policy, user=user, audit_at=audit_at, audit_off=off,
                    installed=installed)
    try:
        access.act_as(os.environ.get("PODIUM_PRINCIPAL") or name)
    except BaseException:
        access.close()
        raise
    return access
