"""The read model controls evaluate: one snapshot's facts, plus events over a period.

Built once from the history; controls never touch the store, Graph or files. Group-based access is
expanded here, once: a role held by a group is held by each member, with how they got it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pimtrail.activations import Activation
from pimtrail.collectors.datasets import SIGN_IN_DATASET
from pimtrail.collectors.normalize import stored_sign_in_source
from pimtrail.bulk import paused_gc  # noqa: F401 -- used here and by the readers that import it from here
from pimtrail.config import Config, is_break_glass
from pimtrail.store import HistoryStore, SnapshotInfo
from pimtrail.timeutil import iso

from .period_events import period_activations
from .profiles import Profile

GLOBAL_ADMIN = "62e90394-69f5-4237-9190-012177145e10"
# The datasets `SnapshotView.holdings` is made of, for controls to name (`datasets=`): a dataset a control reads
# through holdings and does not name would, when not collected, leave holdings out and let it pass. Active holdings:
# roles' active instances, and groups with their members and active PIM memberships; all holdings: eligible ones too.
ACTIVE_HOLDING_DATA = ("role_definitions", "role_assignment_instances", "users", "role_assignable_groups",
                       "group_members", "group_assignment_instances")
HOLDING_DATA = ACTIVE_HOLDING_DATA + ("role_eligibility_instances", "group_eligibility_instances")
# A role's tier: the profile's, else Microsoft's isPrivileged flag (optional, beta). Controls that judge by tier name
# both; the flag is missed only when someone holds a role the profile does not name (`SnapshotView.missing`).
TIER_FLAGS = "privileged_role_definitions"
TIER_DATA = ("role_definitions", TIER_FLAGS)

FACT_KINDS = ("tenant", "licence", "principal", "sign_in_activity", "group_member", "pim_group",
              "role_definition", "role_assignment", "role_eligibility", "direct_role_assignment",
              "role_policy", "group_pim_assignment", "group_pim_eligibility", "group_policy",
              "access_review_definition", "access_review_instance", "access_review_decision",
              "auth_registration", "fido2_key", "ca_policy", "auth_context", "auth_strength", "pim_alert")


def is_member(record: dict[str, Any]) -> bool:
    """Whether a PIM for Groups record is a membership (not an ownership): its access is "member", or none
    is stored (the normaliser stores "member" for a record whose accessId is missing or empty)."""
    return (record.get("access") or "member") == "member"


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
    activated: bool = False  # active by a just-in-time activation: the role's, or the PIM for Groups membership's
    # through a group: "membership", or the PIM for Groups record's kind (group_pim_assignment / _eligibility)
    membership: str | None = None

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
    audit_events: list[dict[str, Any]]  # the period's audit events controls read whole (see build_view)
    profile: Profile
    config: Config
    activations: list[Activation] = field(default_factory=list)
    policy_history: list[dict[str, Any]] = field(default_factory=list)  # role_policy versions up to this snapshot
    # stretches of the period no collected audit window covers (daily collections ask for the events
    # since the previous one: a lost collection leaves a hole the history cannot fill later); None: no audit read
    # said which stretch it covered (an export without `datasets.directory_audits.window`)
    audit_gaps: list[tuple[datetime, datetime]] | None = field(default_factory=list)
    _cache: dict[str, Any] = field(default_factory=dict)

    # -- availability ------------------------------------------------------------------
    def sign_in_source(self) -> str | None:
        """The dataset this snapshot's sign-in facts come from (`collectors.normalize.sign_in_source`): the
        `sign_in_activity` dataset when its export named it (read or failed), the users' elements when they
        carried signInActivity instead, None when the export carried no sign-ins."""
        return stored_sign_in_source(self.coverage.get(SIGN_IN_DATASET))

    def missing(self, datasets: tuple[str, ...], audit_coverage: bool = True) -> list[str]:
        """Datasets a control needs that this snapshot does not hold, with why. A control that reads sign-ins
        names `sign_in_activity`: it needs whichever dataset this snapshot's sign-ins come from (that dataset
        itself, missing, when they come from nowhere). `audit_coverage`: the audit windows must cover the period."""
        out = []
        source = self.sign_in_source() or SIGN_IN_DATASET
        for name in dict.fromkeys(source if n == SIGN_IN_DATASET else n for n in datasets):
            cov = self.coverage.get(name)
            if name == TIER_FLAGS and (cov is None or cov["status"] != "ok"):
                unnamed = self.unnamed_held_roles()
                if unnamed:  # their tier would come from the flag: privileged or not is unknown
                    more = f" and {len(unnamed) - 3} more" if len(unnamed) > 3 else ""
                    out.append(f"{name}, for the tier of {', '.join(unnamed[:3])}{more} ({_why(cov)})")
            elif cov is None or cov["status"] != "ok":
                out.append(f"{name} ({_why(cov)})")
            elif name == "directory_audits" and audit_coverage and self.audit_gaps is None:
                out.append(f"{name} (no window: the exports do not say which stretch of the log they read; "
                           "give datasets.directory_audits.window)")
            elif name == "directory_audits" and audit_coverage and self.audit_gaps:
                gaps = self.audit_gaps
                holes = ", ".join(f"{iso(a)} to {iso(b)}" for a, b in gaps[:3])
                more = f" and {len(gaps) - 3} more" if len(gaps) > 3 else ""
                out.append(f"{name} (no collection covers {holes}{more})")
        return out

    def unnamed_held_roles(self) -> list[str]:
        """The names of the roles someone holds that the profile gives no tier and whose isPrivileged flag this
        snapshot lacks (`TIER_FLAGS` not collected): whether they are privileged is unknown."""
        unnamed = {h.role_id: h.role.get("name") or h.role_id for h in self.holdings()
                   if self.tier(h.role_id) is None and (self.roles.get(h.role_id) or {}).get("privileged") is None}
        return sorted(map(str, unnamed.values()))

    # -- lookups -----------------------------------------------------------------------
    def by_id(self, kind: str, key: str = "id") -> dict[str, dict[str, Any]]:
        cache_key = (kind, key)
        found = self._cache.get(cache_key)
        if found is None:
            found = self._cache[cache_key] = {f[key]: f for f in self.facts.get(kind, []) if f.get(key)}
        return found

    @property
    def principals(self) -> dict[str, dict[str, Any]]:
        return self.by_id("principal")

    @property
    def roles(self) -> dict[str, dict[str, Any]]:
        return self.by_id("role_definition")

    def grouped(self, kind: str, key: str) -> dict[Any, list[dict[str, Any]]]:
        """The facts of one kind by the value of one field (built once per view)."""
        cache_key = f"grouped:{kind}:{key}"
        if cache_key not in self._cache:
            out: dict[Any, list[dict[str, Any]]] = defaultdict(list)
            for f in self.facts.get(kind, []):
                out[f.get(key)].append(f)
            self._cache[cache_key] = out
        return self._cache[cache_key]

    def policy_at(self, role_id: str, when: str | None) -> dict[str, Any] | None:
        """The role's activation policy in force at `when`: the newest version whose change time
        (lastModifiedDateTime, else the snapshot that first saw it) is not after `when`; None when
        the history holds no version that old."""
        if "policy_versions" not in self._cache:
            by_role: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for v in self.policy_history:
                by_role[v["data"].get("role_id")].append(v)
            self._cache["policy_versions"] = by_role
            self._cache["seen"] = {s.seq: iso(s.collected_at) for s in self.snapshots}
        seen = self._cache["seen"]
        versions = self._cache["policy_versions"].get(role_id, [])
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
        tiers = self._cache.setdefault("tiers", {})
        if role_id not in tiers:
            tiers[role_id] = self.profile.tier_of(self.roles.get(role_id) or {"id": role_id})
        return tiers[role_id]

    def group_tier(self, group_id: str | None) -> int | None:
        """The most sensitive tier of the roles a group holds actively: what a PIM for Groups activation of its
        membership makes active (a role the group is only eligible for stays something to activate). None: it
        actively holds no role of a tier."""
        tiers = self._cache.get("group_tiers")
        if tiers is None:
            tiers = self._cache["group_tiers"] = {}
            for inst in self.facts.get("role_assignment", []):
                tier, holder = self.tier(inst["role_id"]), inst["principal_id"]
                if tier is not None and tier < tiers.get(holder, 3):
                    tiers[holder] = tier
        return tiers.get(group_id) if group_id else None

    def activation_tier(self, act: Activation) -> int | None:
        """The tier an activation gives: its role's, or for a PIM for Groups activation the group's roles'."""
        return self.tier(act.role_id) if act.scope == "role" else self.group_tier(act.group_id)

    def activation_role(self, act: Activation) -> str | None:
        """What an activation gives, as a reader names it: the role, or the membership and its group."""
        if act.scope == "role":
            return act.role_name
        group = self.principal(act.group_id).get("name") if act.group_id else None
        return f"{act.role_name or 'Member'} of {group or act.group_id or 'a group'}"

    def break_glass_ids(self) -> set[str]:
        if "break_glass" not in self._cache:
            wanted = self.config.break_glass.wanted()
            self._cache["break_glass"] = {pid for pid, p in self.principals.items()
                                          if is_break_glass(wanted, pid, p.get("upn"))}
        return set(self._cache["break_glass"])

    def group_members(self, group_id: str) -> list[tuple[str, str, bool, dict[str, Any]]]:
        """(member id, how, permanent, record) for everyone who is or may become a member:
        plain membership, active PIM for Groups membership, eligible PIM for Groups membership."""
        out = []
        # Graph lists a PIM-activated member among the group's members too: that membership is the
        # PIM assignment, not a plain one, so it is taken from the PIM record below.
        via_pim = {m["principal_id"] for m in self.grouped("group_pim_assignment", "group_id").get(group_id, [])
                   if is_member(m)}
        for m in self.grouped("group_member", "group_id").get(group_id, []):
            if m["member_id"] not in via_pim:
                out.append((m["member_id"], "membership", True, m))
        for kind in ("group_pim_assignment", "group_pim_eligibility"):
            for m in self.grouped(kind, "group_id").get(group_id, []):
                if is_member(m):
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
                activated = is_activated(inst)
                out.append(Holding(inst["principal_id"], holder, inst["role_id"], role, state,
                                   inst["permanent"], "direct", None, outside, inst, inst.get("start"),
                                   inst.get("end"), activated))
                if holder.get("type") != "group":
                    continue
                for member_id, how, permanent, record in self.group_members(inst["principal_id"]):
                    member_state = state if how != "group_pim_eligibility" else "eligible"
                    out.append(Holding(
                        member_id, self.principal(member_id), inst["role_id"], role, member_state,
                        inst["permanent"] and permanent, "group" if how == "membership" else "pim_group",
                        inst["principal_id"], outside or bool(record.get("outside_pim")), inst,
                        record.get("start"), record.get("end") if record.get("end") else inst.get("end"),
                        activated or how == "group_pim_assignment" and is_activated(record), how))
        self._cache["holdings"] = out
        return out

    def user_holdings(self) -> list[Holding]:
        """Holdings by users and service principals (groups themselves left out: their members count)."""
        if "user_holdings" not in self._cache:
            self._cache["user_holdings"] = [h for h in self.holdings() if h.principal.get("type") != "group"]
        return list(self._cache["user_holdings"])


def _why(cov: dict[str, Any] | None) -> str:
    """Why a dataset a snapshot lacks is missing: not collected, or Graph's error code (or HTTP status)."""
    if cov is None or cov["status"] == "missing":
        return "not collected"
    return cov.get("error_code") or cov.get("http_status") or "error"


def is_activated(record: dict[str, Any]) -> bool:
    """Whether a role instance or a PIM for Groups membership is active by an activation (Graph's assignmentType:
    "Activated" for roles, "activated" for groups), not assigned."""
    return str(record.get("assignment_type") or "").lower() == "activated"


# One fact per user of the tenant (100,000 on a large one): read only for the principals the view names.
PER_USER_KINDS = ("principal", "sign_in_activity", "auth_registration")
# Where facts name principals: holders of roles, members and groups of role-assignable groups, owners of keys.
NAMING_FIELDS = (("role_assignment", "principal_id"), ("role_eligibility", "principal_id"),
                 ("direct_role_assignment", "principal_id"), ("group_member", "group_id"),
                 ("group_member", "member_id"), ("group_pim_assignment", "group_id"),
                 ("group_pim_assignment", "principal_id"), ("group_pim_eligibility", "group_id"),
                 ("group_pim_eligibility", "principal_id"), ("pim_group", "id"), ("fido2_key", "user_id"))


def break_glass_principals(store: HistoryStore, tenant: str, seq: int, config: Config) -> list[dict[str, Any]]:
    """The principal facts of the configured break-glass accounts (by id or UPN, letter case ignored)."""
    wanted = config.break_glass.wanted()
    if not wanted:
        return []
    return [p for p in store.facts(tenant, "principal", seq, contains=sorted(wanted))
            if is_break_glass(wanted, p.get("id"), p.get("upn"))]


def build_view(store: HistoryStore, tenant: str, snapshot: SnapshotInfo, profile: Profile, config: Config,
               period_start: datetime | None = None, period_end: datetime | None = None,
               base: SnapshotView | None = None) -> SnapshotView:
    """The view of one snapshot and an evaluation period. `base`, a view of the same snapshot for another
    period, lends its facts: only what differs is read again.

    The per-user kinds (principals, sign-in activity, registration details) are read only for the
    principals that the snapshot's role, group and key facts name, the period's activations name, and the
    break-glass accounts: the controls, the trend and the pack look up no one else (a test compares
    every control's results with a view holding the whole tenant). Of the period's audit events the view
    keeps the joined `activations` and, in `audit_events`, the events controls read whole (assignments
    made outside PIM)."""
    with paused_gc():
        return _build_view(store, tenant, snapshot, profile, config, period_start, period_end, base)


def _build_view(store: HistoryStore, tenant: str, snapshot: SnapshotInfo, profile: Profile, config: Config,
                period_start: datetime | None, period_end: datetime | None, base: SnapshotView | None) -> SnapshotView:
    end = period_end or snapshot.collected_at
    start = period_start or end - timedelta(days=int(profile.params.get("evaluation_period_days", 31)))
    activations, audit = period_activations(store, tenant, start, end)
    if base is not None and base.snapshot.id == snapshot.id:
        coverage, facts, policies = base.coverage, base.facts, base.policy_history
        missing = {a.principal_id for a in activations} - set(base.by_id("principal"))
        if missing:  # activators of this period the base did not name
            facts = dict(facts)
            more = store.principal_facts(tenant, PER_USER_KINDS, snapshot.seq, missing)
            for kind in PER_USER_KINDS:
                facts[kind] = sorted(facts.get(kind, []) + more[kind], key=lambda f: f["_key"])
    else:
        coverage = {c["dataset"]: c for c in store.coverage(snapshot.id)}
        facts = {kind: store.facts(tenant, kind, snapshot.seq) for kind in FACT_KINDS if kind not in PER_USER_KINDS}
        policies = store.fact_history(tenant, "role_policy", snapshot.seq)
        named = {f.get(field) for kind, field in NAMING_FIELDS for f in facts.get(kind, [])}
        named |= {a.principal_id for a in activations}
        named |= {p["id"] for p in break_glass_principals(store, tenant, snapshot.seq, config)}
        named.discard(None)
        facts.update(store.principal_facts(tenant, PER_USER_KINDS, snapshot.seq, named))
    slack = timedelta(days=float(profile.params.get("history_gap_max_days", 0)))
    windows = store.windows(tenant, "directory_audits", snapshot.seq)
    return SnapshotView(snapshot, store.snapshots(tenant), start, end, coverage, facts, audit, profile, config,
                        activations, policies, audit_gaps(windows, start, end, slack) if windows else None)


def audit_gaps(windows: list[tuple[datetime, datetime]], start: datetime, end: datetime,
               slack: timedelta = timedelta(0)) -> list[tuple[datetime, datetime]]:
    """The stretches of [start, end) no collected audit window covers (`windows` sorted by their start): between
    windows, and at the period's ends (before the first window, after the newest) when longer than `slack`, the
    collection cadence the profile accepts (`history_gap_max_days`). Those events are not in the history: a
    period of 31 days before a first collection, whose log reaches back 30, lacks a day; one of 90 lacks 60."""
    gaps: list[tuple[datetime, datetime]] = []
    covered: datetime | None = None
    for begin, finish in windows:
        if covered is None:
            if begin > start and (begin - start > slack or begin >= end):
                gaps.append((start, min(begin, end)))
        elif begin > covered and begin > start and covered < end:
            gaps.append((max(covered, start), min(begin, end)))
        covered = finish if covered is None else max(covered, finish)
    if covered is not None and covered < end and (end - covered > slack or covered <= start):
        gaps.append((max(covered, start), end))
    return gaps


# The facts holdings are made of, and how the store orders each kind (by its key).
HOLDING_KINDS: dict[str, Any] = {
    "role_definition": lambda f: f["id"], "role_assignment": lambda f: f["id"], "role_eligibility": lambda f: f["id"],
    "group_member": lambda f: f"{f['group_id']}|{f['member_id']}", "group_pim_assignment": lambda f: f["id"],
    "group_pim_eligibility": lambda f: f["id"],
}
_HOLDER_FIELDS = (("role_assignment", "principal_id"), ("role_eligibility", "principal_id"),
                  ("group_member", "member_id"), ("group_pim_assignment", "principal_id"),
                  ("group_pim_eligibility", "principal_id"))


class HoldingsHistory:
    """Light views of many snapshots for roll-forwards and trend points.

    The facts behind holdings are read once for the whole run of snapshots (one query per kind, every
    version) and cut per snapshot, with only the principals that the holdings name or that are
    break-glass accounts. A light view has no events, no coverage and no per-user kinds (sign-ins,
    registrations): one full view per snapshot would read the whole tenant again for each of them.

    `fields` (kind -> field names): of the facts of those kinds, only these fields (and those read here: the
    holders' ids, the principals' id and UPN), a field a fact lacks as None (`HistoryStore.version_rows`). The
    trend's sweep reads a few fields of each version (evidence/standing.py `SWEEP_FIELDS`); such a history has
    no light views, which hand whole facts to controls and roll-forwards."""

    def __init__(self, store: HistoryStore, tenant: str, snapshots: list[SnapshotInfo], profile: Profile,
                 config: Config, fields: dict[str, tuple[str, ...]] | None = None) -> None:
        self.snapshots, self.profile, self.config, self.fields = snapshots, profile, config, fields
        first, last = min(s.seq for s in snapshots), max(s.seq for s in snapshots)
        self.versions: dict[str, list[tuple[int, int | None, dict[str, Any]]]] = {}
        with paused_gc():
            for kind in HOLDING_KINDS:
                self.versions[kind] = store.version_rows(tenant, kind, last, after_seq=first,
                                                         fields=self.fields_of(kind))
            # principals: those the holdings of any of these snapshots name, and the break-glass accounts
            wanted = config.break_glass.wanted()
            cut = self.fields_of("principal")
            glass = {d.get("id") for _, _, d in (store.version_rows(tenant, "principal", last, contains=sorted(wanted),
                                                                    after_seq=first, fields=cut) if wanted else ())
                     if is_break_glass(wanted, d.get("id"), d.get("upn"))}
            named = {d.get(field) for kind, field in _HOLDER_FIELDS for _, _, d in self.versions[kind]} | glass
            self.principals: dict[str, list[tuple[int, int | None, dict[str, Any]]]] = defaultdict(list)
            for version in store.version_rows(tenant, "principal", last, principal_ids=named, after_seq=first,
                                              fields=cut):
                self.principals[version[2].get("id")].append(version)
        self.break_glass = {pid for pid, versions in self.principals.items() if pid and (
            is_break_glass(wanted, pid, None) or any(is_break_glass(wanted, None, d.get("upn")) for _, _, d in versions))}

    def fields_of(self, kind: str) -> tuple[str, ...] | None:
        """The fields read of a kind's facts (None: whole facts)."""
        if self.fields is None or kind not in self.fields:
            return None
        own = tuple(field for k, field in _HOLDER_FIELDS if k == kind) + (("id", "upn") if kind == "principal" else ())
        return tuple(dict.fromkeys(self.fields[kind] + own))

    def covers(self, snapshots: list[SnapshotInfo]) -> bool:
        seqs = {s.seq for s in self.snapshots}
        return all(s.seq in seqs for s in snapshots)

    def view(self, snapshot: SnapshotInfo) -> SnapshotView:
        if self.fields is not None:
            raise ValueError("a holdings history read for some fields only has no light views")
        seq = snapshot.seq
        facts: dict[str, list[dict[str, Any]]] = {}
        for kind, order in HOLDING_KINDS.items():
            facts[kind] = sorted((d for vf, vt, d in self.versions[kind] if vf <= seq and (vt is None or vt > seq)),
                                 key=order)
        named = {f.get(field) for kind, field in _HOLDER_FIELDS for f in facts[kind]} | self.break_glass
        facts["principal"] = [d for pid in sorted(p for p in named if p)
                              for vf, vt, d in self.principals.get(pid, ()) if vf <= seq and (vt is None or vt > seq)]
        return SnapshotView(snapshot, self.snapshots, snapshot.collected_at, snapshot.collected_at, {}, facts, [],
                            self.profile, self.config)
