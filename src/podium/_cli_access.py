"""The `podium` command's principal, access policy and audit log.

The command acts as the local user: `$PODIUM_PRINCIPAL`, else the operating system's user
name, with the roles the policy file's `principals:` section gives it. The policy file is
`--policy FILE`, else `$PODIUM_POLICY`, else `$PODIUM_HOME/policy.yaml` when it exists;
with none, everything is allowed, and `podium run` says so. The audit log is
`$PODIUM_AUDIT` (`off`: none), else the journal's database, where `podium audit verify`
looks.
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from podium import config
from podium.core.principal import Principal
from podium.engine.runtime import Engine
from podium.security.audit import AuditLog
from podium.security.rbac import Policy, load_policy
from podium.store.base import Store

NO_POLICY = ("no access policy (--policy, $PODIUM_POLICY or $PODIUM_HOME/policy.yaml): "
             "every principal may do everything")


def local_user() -> str:
    """`$PODIUM_PRINCIPAL`, else the operating system's user name."""
    configured = os.environ.get("PODIUM_PRINCIPAL")
    if configured:
        return configured
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no user name in the environment nor in the passwd file
        return "local"


def policy_file(given: Path | None) -> Path | None:
    """The policy file in force: the one given, else `$PODIUM_HOME/policy.yaml` if any."""
    if given is not None:
        return given
    default = config.home() / "policy.yaml"
    return default if default.is_file() else None


@dataclass
class Access:
    """Who the command acts as, under which policy, audited where."""

    policy: Policy | None
    principal: Principal
    audit: AuditLog | None

    def engine(self, store: Store) -> Engine:
        """An engine that checks against the policy and writes to the audit log."""
        return Engine(store, policy=self.policy, audit=self.audit)

    def __enter__(self) -> Access:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.audit is not None:
            try:
                self.audit.close()
            except Exception:
                if exc is None:
                    raise
                # The command failed already, most likely for the same reason (a full
                # disk): its error is the one to show.


def open_access(db: Path | None, given: Path | None) -> Access:
    """The command's access: policy, principal and audit log.

    Raises:
        PolicyFileError: the policy file is invalid.
        UserError: it cannot be read, or the audit log's key does not match.
    """
    file = policy_file(given)
    policy = load_policy(file) if file is not None else None
    user = local_user()
    principal = policy.principal(user) if policy is not None else Principal(id=user)
    audit = None if config.audit_off() else AuditLog(config.audit_path(db))
    return Access(policy=policy, principal=principal, audit=audit)
