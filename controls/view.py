"""The read model controls evaluate: one snapshot's facts, plus events over a period.

Built once from the history; controls never touch the store, Graph or files. Group-based access is
expanded here, once: a role held by a group is held by each member, with how they got it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pimtrail.activations import Activation, join_activations
from pimtrail.config import Config
from pimtrail.store import HistoryStore, SnapshotInfo
from pimtrail.timeutil import iso

from .profiles import Profile

GLOBAL_ADMIN = "62e90394-69f5-4237-9190-012177145e10"

FACT_KINDS = ("tenant", "licence", "principal", "sign_in_activity", "group_member", "pim_group",
              "role_definition", "role_assignment", "role_eligibility", "direct_role_assignment",
              "role_policy", "group_pim_assignment", "group_pim_eligibility", "group_policy",
              "access_review_definition", "access_review_instance", "access_review_decision",
              "auth_registration", "fido2_key", "ca_policy", "auth_context", "auth_strength", "pim_alert")


@dataclass
class Holding:
    """One principal holding one role, after expanding groups."""

    principal_id: str
    principal: dict[str, Any]
    role_id: str
    role: dict[str, Any]
    state: str  # active / eligible
    permanent: bool
    via: str  # direct / group / pim_group
    group_id: str | None
    outside_pim: bool
    instance: dict[str, Any]
    start: str | None = None
    end: str | None = None

    @property
    def principal_name(self) -> str:
        return self.principal.get("upn") or self.principal.get("name") or self.principal_id


@dataclass
class SnapshotView:
    snapshot: SnapshotInfo
    snapshots: list[SnapshotInfo]
    period_start: datetime
    period_end: datetime
    coverage: dict[str, dict[str, Any]]
    facts: dict[str, list[dict[str, Any]]]
    audit_events: list[dict[str, Any]]
    profile: Profile
    config: Config
    activations: list[Activation] = field(default_factory=list)
    policy_history: list[dict[str, Any]] = field(default_factory=list)  # role_policy versions up to this snapshot
    _cache: dict[str, Any] = field(default_factory=dict)

    # -- availability ------------------------------------------------------------------
    def missing(self, datasets: tuple[str, ...]) -> list[str]:
        """Datasets a control needs that this snapshot does not hold, with why."""
        out = []
        for name in datasets:
            cov = self.coverage.get(name)
            if cov is None or cov["status"] == "missing":
                out.append(f"{name} (not collected)")
            elif cov["status"] != "ok":
                code = cov.get("error_code") or cov.get("http_status") or "error"
                out.append(f"{name} ({code})")
        return out

    # -- lookups -----------------------------------------------------------------------
    def by_id(self, kind: str, key: str = "id") -> dict[str, dict[str, Any]]:
        cache_key = f"{kind}:{key}"
        if cache_key not in self._cache:
            self._cache[cache_key] = {f[key]: f for f in self.facts.get(kind, []) if f.get(key)}
        return self._cache[cache_key]

    @property
    def principals(self) -> dict[str, dict[str, Any]]:
        return self.by_id("principal")

    @property
    def roles(self) -> dict[str, dict[str, Any]]:
        return self.by_id("role_definition")

    def policy_at(self, role_id: str, when: str | None) -> dict[str, Any] | None:
        """The role's activation policy in force at `when`: the newest version whose change time
        (lastModifiedDateTime, else the snapshot that first saw it) is not after `when`; None when
        the history holds no version that old."""
        seen = {s.seq: iso(s.collected_at) for s in self.snapshots}
        versions = [v for v in self.policy_history if v["data"].get("role_id") == role_id]
        if not versions or not when:
            return next((p for p in self.facts.get("role_policy", []) if p["role_id"] == role_id), None)
        chosen = None  # every known version changed after `when`: what was in force then is unknown
        for v in versions:
            changed = v["data"].get("last_modified") or seen.get(v["valid_from"])
            if changed and changed <= when:
                chosen = v["data"]
        return chosen

    def principal(self, principal_id: str) -> dict[str, Any]:
        return self.principals.get(principal_id) or {"id": principal_id, "type": "unknown"}

    def tier(self, role_id: str) -> int | None:
        return self.profile.tier_of(self.roles.get(role_id) or {"id": role_id})

    def break_glass_ids(self) -> set[str]:
        wanted = {a.lower() for a in self.config.break_glass.accounts}
        return {pid for pid, p in self.principals.items()
                if pid.lower() in wanted or (p.get("upn") or "").lower() in wanted}

    def group_members(self, group_id: str) -> list[tuple[str, str, bool, dict[str, Any]]]:
        """(member id, how, permanent, record) for everyone who is or may become a member:
        plain membership, active PIM for Groups membership, eligible PIM for Groups membership."""
        out = []
        # Graph lists a PIM-activated member among the group's members too: that membership is the
        # PIM assignment, not a plain one, so it is taken from the PIM record below.
        via_pim = {m["principal_id"] for m in self.facts.get("group_pim_assignment", [])
                   if m["group_id"] == group_id and m.get("access", "member") == "member"}
        for m in self.facts.get("group_member", []):
            if m["group_id"] == group_id and m["member_id"] not in via_pim:
                out.append((m["member_id"], "membership", True, m))
        for kind in ("group_pim_assignment", "group_pim_eligibility"):
            for m in self.facts.get(kind, []):
                if m["group_id"] == group_id and m.get("access", "member") == "member":
                    out.append((m["principal_id"], kind, m["permanent"], m))
        return out

    def holdings(self) -> list[Holding]:
        """Every principal x role, active or eligible, with groups expanded to their members."""
        if "holdings" in self._cache:
            return self._cache["holdings"]
        out: list[Holding] = []
        for kind, state in (("role_assignment", "active"), ("role_eligibility", "eligible")):
            for inst in self.facts.get(kind, []):
                role = self.roles.get(inst["role_id"]) or {"id": inst["role_id"], "name": inst.get("role_name")}
                holder = self.principal(inst["principal_id"])
                outside = bool(inst.get("outside_pim"))
                out.append(Holding(inst["principal_id"], holder, inst["role_id"], role, state,
                                   inst["permanent"], "direct", None, outside, inst, inst.get("start"),
                                   inst.get("end")))
                if holder.get("type") != "group":
                    continue
                for member_id, how, permanent, record in self.group_members(inst["principal_id"]):
                    member_state = state if how != "group_pim_eligibility" else "eligible"
                    out.append(Holding(
                        member_id, self.principal(member_id), inst["role_id"], role, member_state,
                        inst["permanent"] and permanent, "group" if how == "membership" else "pim_group",
                        inst["principal_id"], outside or bool(record.get("outside_pim")), inst,
                        record.get("start"), record.get("end") if record.get("end") else inst.get("end")))
        self._cache["holdings"] = out
        return out

    def user_holdings(self) -> list[Holding]:
        """Holdings by users and service principals (groups themselves left out: their members count)."""
        return [h for h in self.holdings() if h.principal.get("type") != "group"]


def build_view(store: HistoryStore, tenant: str, snapshot: SnapshotInfo, profile: Profile, config: Config,
               period_start: datetime | None = None, period_end: datetime | None = None) -> SnapshotView:
    end = period_end or snapshot.collected_at
    start = period_start or end - timedelta(days=int(profile.params.get("evaluation_period_days", 31)))
    coverage = {c["dataset"]: c for c in store.coverage(snapshot.id)}
    facts: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for kind in FACT_KINDS:
        facts[kind] = store.facts(tenant, kind, snapshot.seq)
    # events from a little before the period so an activation requested just before it still joins
    audit = store.events(tenant, "audit", start - timedelta(days=1), end)
    activations = [a for a in join_activations(audit)
                   if start <= _time(a.requested_at or a.start) < end]
    return SnapshotView(snapshot, store.snapshots(tenant), start, end, coverage, dict(facts),
                        [e for e in audit if start <= _time(e["time"]) < end], profile, config, activations,
                        store.fact_history(tenant, "role_policy", snapshot.seq))


def _time(value: str | None) -> datetime:
    from pimtrail.timeutil import parse_iso

    return parse_iso(value) if value else datetime.min
