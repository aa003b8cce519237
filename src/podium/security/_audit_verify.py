"""Following the audit chain and naming what broke it.

The walk starts at the genesis MAC and at each step looks for the record that continues the
chain: one whose `prev_mac` is the current MAC and whose MAC verifies at the next position.
Where none does, it tells the cases apart:

- a record whose MAC fails but whose MAC is vouched for (the next genuine record points to
  it, or a signed head names it) was `edited`;
- a later record that verifies at a later position means the positions between were
  `deleted` (rows renumbered to hide the gap are found within a window of positions);
- genuine records stored out of order are `reordered`; rows left over are `inserted`;
- a signed head beyond the chain's end means the newest records were `truncated`, and a
  head whose MAC the chain does not hold means the chain was rewritten (`edited`).
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from podium.security import _audit_keys as keys
from podium.security._audit_records import (
    GENESIS,
    AuditRecord,
    Finding,
    SignedHead,
    VerifyReport,
)
from podium.security._audit_records import (
    mac as _mac,
)
from podium.security._audit_witness import Witnessed

_RESYNC_WINDOW = 64


class _Walk:
    def __init__(self, key: bytes, records: list[AuditRecord], vouched: set[str]) -> None:
        self.key = key
        self.records = records
        self.by_prev: dict[str, list[AuditRecord]] = defaultdict(list)
        self.by_seq: dict[int, AuditRecord] = {}
        for r in records:
            self.by_prev[r.prev_mac].append(r)
            self.by_seq.setdefault(r.seq, r)
        self.seqs = [r.seq for r in records]  # sorted: records come in seq order
        self.self_valid = {id(r) for r in records if self.valid(r, r.seq)}
        self.vouched = vouched | {r.prev_mac for r in records if id(r) in self.self_valid}
        self.used: set[int] = set()  # ids of rows placed in the chain
        self.chain: dict[int, str] = {}  # position -> MAC
        self.stored: list[tuple[int, AuditRecord]] = []  # (position, row), genuine rows
        self.findings: list[Finding] = []
        self.gaps: list[int] = []  # positions the chain skips
        self.pos = 0
        self.cur = GENESIS

    def valid(self, r: AuditRecord, seq: int, prev: str | None = None) -> bool:
        prev = r.prev_mac if prev is None else prev
        if seq == r.seq and prev == r.prev_mac and hasattr(self, "self_valid"):
            return id(r) in self.self_valid
        return _mac(self.key, prev, r.content(seq)) == r.mac

    def place(self, r: AuditRecord, pos: int, genuine: bool) -> None:
        self.used.add(id(r))
        self.pos, self.cur = pos, r.mac
        self.chain[pos] = r.mac
        if genuine:
            self.stored.append((pos, r))

    def free(self, r: AuditRecord | None) -> bool:
        return r is not None and id(r) not in self.used

    def step(self) -> bool:
        nxt = self.pos + 1
        candidates = [r for r in self.by_prev.get(self.cur, ()) if self.free(r)]
        for r in candidates:
            if self.valid(r, nxt, self.cur):
                self.place(r, nxt, genuine=True)
                return True
        at_seq = self.by_seq.get(nxt)
        for r in [*candidates, *([at_seq] if at_seq and self.free(at_seq) else [])]:
            if r.mac in self.vouched and r.mac != self.cur:
                self.findings.append(Finding(
                    kind="edited", seq=r.seq,
                    message=f"record #{nxt} fails its MAC but the chain vouches for it: "
                            "its content was changed"))
                self.place(r, nxt, genuine=False)
                return True
        return self.resync()

    def resync(self) -> bool:
        """After a break: the next row that verifies at a later position, the gap deleted.

        Rows come sorted by stored seq; only the first few after the break are also tried at
        other positions (rows renumbered to close a gap), which keeps a walk linear.
        """
        start = bisect_right(self.seqs, self.pos)
        tried = 0
        for r in self.records[start:]:
            if not self.free(r):
                continue
            tries = [r.seq] if r.seq > self.pos + 1 and id(r) in self.self_valid else []
            if not tries and tried < _RESYNC_WINDOW:
                tries = list(range(self.pos + 2, self.pos + 2 + _RESYNC_WINDOW))
            tried += 1
            true_seq = next((s for s in tries if self.valid(r, s)), None)
            if true_seq is None:
                continue
            self.bridge(r, true_seq)
            return True
        return False

    def bridge(self, r: AuditRecord, true_seq: int) -> None:
        self.gaps.extend(range(self.pos + 1, true_seq))
        self.place(r, true_seq, genuine=True)

    def finish(self) -> None:
        # A row stored at a gap's seq that found no place in the chain was edited (or
        # forged in place); a gap with no such row was deleted. Rows left are inserted.
        for p in self.gaps:
            other = self.by_seq.get(p)
            if other is not None and self.free(other):
                self.used.add(id(other))
                self.findings.append(Finding(
                    kind="edited", seq=p,
                    message=f"record #{p} fails its MAC and breaks the chain: edited "
                            "or replaced by a forgery"))
            else:
                self.findings.append(Finding(
                    kind="deleted", seq=p, message=f"record #{p} is missing from the chain"))
        for r in self.records:
            if self.free(r):
                self.findings.append(Finding(
                    kind="inserted", seq=r.seq,
                    message=f"row #{r.seq} is not part of the chain (its MAC fails): a "
                            "forged record, or the newest record edited"))
        previous = 0
        for i, (pos, r) in enumerate(self.stored):
            following = self.stored[i + 1][1].seq if i + 1 < len(self.stored) else None
            if r.seq <= previous or (following is not None and r.seq >= following):
                self.findings.append(Finding(
                    kind="reordered", seq=r.seq,
                    message=f"record #{pos} of the chain is stored at seq {r.seq}"))
            previous = r.seq


def _head(fields: dict[str, Any]) -> SignedHead | None:
    try:
        return SignedHead(seq=int(fields["seq"]), mac=str(fields["mac"]),
                          time_us=int(fields["time_us"]), key_id=str(fields["key_id"]),
                          signature=str(fields["signature"]))
    except (KeyError, TypeError, ValueError):
        return None


def _witnessed_heads(witnessed: Witnessed, public: Ed25519PublicKey | None,
                     findings: list[Finding], warnings: list[str],
                     known: set[SignedHead]) -> list[SignedHead]:
    """The witness's heads of this log that verify, but for those `known` already (from
    the database); findings for those that do not, and for heads of another log once
    kept in the same file."""
    warnings += witnessed.unreadable
    valid: list[SignedHead] = []
    if public is None:
        if witnessed.heads:
            warnings.append(f"no public key: the {len(witnessed.heads)} heads in "
                            f"{witnessed.path} were not checked")
        return valid
    kid = keys.key_id(public)
    for line in witnessed.heads:
        head = _head(line.head)
        if head in known:
            continue
        if head is not None:
            known.add(head)
        if head is not None and head.key_id == kid and head.valid(public):
            valid.append(head)
        else:
            findings.append(Finding(
                kind="bad_signature", seq=head.seq if head else 0,
                message=f"{witnessed.path}:{line.line}: a witnessed head that does not "
                        f"verify with key {kid!r} (forged, or signed by another key)"))
    others = [(line.log, h) for line in witnessed.other_logs
              if (h := _head(line.head)) is not None and h.key_id == kid and h.valid(public)]
    if others:
        log, last = max(others, key=lambda o: o[1].seq)
        findings.append(Finding(
            kind="replaced", seq=last.seq,
            message=f"log replaced: {witnessed.path} holds signed heads up to #{last.seq} "
                    f"of another log ({log!r}) kept in this database file; that log was "
                    "deleted and a new one made in its place"))
    return valid


def _against_heads(walk: _Walk, any_records: bool, heads: list[SignedHead],
                   findings: list[Finding]) -> SignedHead | None:
    """Findings of the chain walked against the valid signed heads; the latest head."""
    latest = max(heads, key=lambda h: h.seq, default=None)
    if latest is not None and not any_records:
        findings.append(Finding(
            kind="emptied", seq=1,
            message=f"log emptied: it has no records, but a signed head covers "
                    f"#1-#{latest.seq}"))
    elif latest is not None and latest.seq > walk.pos:
        findings.append(Finding(
            kind="truncated", seq=walk.pos + 1,
            message=f"records {walk.pos + 1}-{latest.seq} cut: the chain ends at "
                    f"#{walk.pos} but a signed head covers #{latest.seq}"))
    for h in sorted({(h.seq, h.mac): h for h in heads}.values(), key=lambda h: h.seq):
        if h.seq <= walk.pos and h.seq in walk.chain and walk.chain[h.seq] != h.mac:
            findings.append(Finding(
                kind="rewritten", seq=h.seq,
                message=f"chain rewritten: record #{h.seq} is not the one its signed head "
                        "names (the chain was rewritten from there or before)"))
    return latest


def verify_chain(key: bytes, records: list[AuditRecord], heads: list[SignedHead],
                 public: Ed25519PublicKey | None, *, trusted_head: SignedHead | None,
                 warnings: list[str], witnessed: Witnessed | None = None) -> VerifyReport:
    """Walk the chain of `records` and check it against the valid `heads`, those kept in
    the database and those the witness holds."""
    findings: list[Finding] = []
    valid_heads: list[SignedHead] = []
    if public is not None:
        kid = keys.key_id(public)
        for h in heads:
            if h.key_id == kid and h.valid(public):
                valid_heads.append(h)
            else:
                findings.append(Finding(
                    kind="bad_signature", seq=h.seq,
                    message=f"the head signed at #{h.seq} does not verify with key {kid!r}"))
    if witnessed is not None:
        valid_heads += _witnessed_heads(witnessed, public, findings, warnings, set(heads))
    if trusted_head is not None:
        valid_heads.append(trusted_head)
    walk = _Walk(key, records, {h.mac for h in valid_heads})
    while walk.step():
        pass
    walk.finish()
    findings += walk.findings
    latest = _against_heads(walk, bool(records), valid_heads, findings)
    if latest is None:
        warnings.append("no valid signed head: deleting the newest records would go unseen")
    elif walk.pos > latest.seq:
        warnings.append(f"records after #{latest.seq} are not yet covered by a signed head")
    findings.sort(key=lambda f: (f.seq, f.kind))
    return VerifyReport(records=len(records), chain_length=walk.pos,
                        heads_checked=len(heads) if public is not None else 0,
                        head=latest, findings=tuple(findings), warnings=tuple(warnings))
