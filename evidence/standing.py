"""Standing-access points for a run of snapshots, by one sweep over the fact versions.

`series.point(view)` expands every holding of one snapshot; doing that for each of 365 daily snapshots
of a 100,000-user tenant repeats the same work 365 times, while only ~0.5 % changes from day to day.
The sweep keeps the holdings' aggregates and, at each snapshot, recomputes only the *units* whose facts
changed: a role instance held by a user or service principal, or a group with everything it grants
(its role instances x its members). A unit is recomputed with the view's own `holdings()` on a view
holding just that unit's facts, so the sweep and `point()` agree by construction (a test compares them).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from pimtrail.controls.view import GLOBAL_ADMIN, HOLDING_KINDS, HoldingsHistory, SnapshotView
from pimtrail.store import SnapshotInfo

INSTANCE_KINDS = ("role_assignment", "role_eligibility")
MEMBER_KINDS = ("group_member", "group_pim_assignment", "group_pim_eligibility")
Contribution = list[tuple[str, int, str, bool, str | None, bool]]  # principal, tier, state, permanent, type, GA


class Sweep:
    def __init__(self, history: HoldingsHistory) -> None:
        self.h = history
        self.instances: dict[tuple[str, str], dict[str, Any]] = {}  # (kind, id) -> instance
        self.members: dict[tuple[str, str], dict[str, Any]] = {}  # (kind, key) -> membership record
        self.principals: dict[str, dict[str, Any]] = {}
        self.roles: dict[str, dict[str, Any]] = {}
        self.role_list: list[dict[str, Any]] = []
        self.tiers: dict[str, int | None] = {}  # the unit views' tier cache, shared while the roles stay
        self.held_by: dict[str, set[tuple[str, str]]] = defaultdict(set)
        self.group_records: dict[str, set[tuple[str, str]]] = defaultdict(set)
        self.member_of: dict[str, set[str]] = defaultdict(set)
        self.units: dict[tuple, Contribution] = {}
        self.standing: Counter = Counter()  # (tier, principal) of permanent active holdings
        self.counts: Counter = Counter()  # eligible / assigned / activated / outside_pim
        self.ga: Counter = Counter()
        self.privileged: Counter = Counter()
        self.seq = 0
        changes: dict[int, list[tuple[int, str, dict[str, Any]]]] = defaultdict(list)  # seq -> (+1/-1, kind, data)
        for kind in HOLDING_KINDS:
            for vf, vt, data in history.versions[kind]:
                self._version(changes, vf, vt, kind, data)
        for versions in history.principals.values():
            for vf, vt, data in versions:
                self._version(changes, vf, vt, "principal", data)
        self.changes = changes

    @staticmethod
    def _version(changes: dict, vf: int, vt: int | None, kind: str, data: dict[str, Any]) -> None:
        changes[vf].append((1, kind, data))
        if vt is not None:
            changes[vt].append((-1, kind, data))

    # ------------------------------------------------------------------ facts in and out
    @staticmethod
    def _key(kind: str, data: dict[str, Any]) -> tuple[str, str]:
        return kind, HOLDING_KINDS[kind](data) if kind in HOLDING_KINDS else data.get("id")

    def _apply(self, sign: int, kind: str, data: dict[str, Any], dirty: set[tuple]) -> bool:
        """Apply one version starting (+1) or ending (-1); mark the units it touches. True when a role
        definition changed (tiers may have moved: everything is recomputed)."""
        key = self._key(kind, data)
        if kind == "role_definition":
            self.roles.pop(data["id"], None) if sign < 0 else self.roles.__setitem__(data["id"], data)
            return True
        if kind == "principal":
            pid = data.get("id")
            if sign < 0:
                if self.principals.get(pid) is data:
                    del self.principals[pid]
            else:
                self.principals[pid] = data
            dirty.update(("i",) + k for k in self.held_by.get(pid, ()))
            dirty.add(("g", pid))
            dirty.update(("g", g) for g in self.member_of.get(pid, ()))
            return False
        if kind in INSTANCE_KINDS:
            holder = data["principal_id"]
            if sign < 0:
                if self.instances.get(key) is data:
                    del self.instances[key]
                    self.held_by[holder].discard(key)
                    self.counts["outside_pim"] -= kind == "role_assignment" and bool(data.get("outside_pim"))
            else:
                self.instances[key] = data
                self.held_by[holder].add(key)
                self.counts["outside_pim"] += kind == "role_assignment" and bool(data.get("outside_pim"))
            dirty.update((("i",) + key, ("g", holder)))
            return False
        group, member = data["group_id"], data.get("member_id") or data.get("principal_id")
        if sign < 0:
            if self.members.get(key) is data:
                del self.members[key]
                self.group_records[group].discard(key)
                if not any(self._member(self.members[k]) == member for k in self.group_records[group]):
                    self.member_of[member].discard(group)
        else:
            self.members[key] = data
            self.group_records[group].add(key)
            self.member_of[member].add(group)
        dirty.add(("g", group))
        return False

    @staticmethod
    def _member(data: dict[str, Any]) -> str:
        return data.get("member_id") or data.get("principal_id")

    # ------------------------------------------------------------------ units
    def _view(self, snapshot: SnapshotInfo, instances: list[tuple[str, str]], records: list[tuple[str, str]]
              ) -> SnapshotView:
        facts: dict[str, list[dict[str, Any]]] = {k: [] for k in HOLDING_KINDS}
        facts["role_definition"] = self.role_list
        ids = set()
        for key in instances:
            facts[key[0]].append(self.instances[key])
            ids.add(self.instances[key]["principal_id"])
        for key in records:
            facts[key[0]].append(self.members[key])
            ids.add(self._member(self.members[key]))
        facts["principal"] = [self.principals[p] for p in ids if p in self.principals]
        # the roles by id and their tiers are the same for every unit: built once, not per unit view
        return SnapshotView(snapshot, self.h.snapshots, snapshot.collected_at, snapshot.collected_at, {}, facts, [],
                            self.h.profile, self.h.config,
                            _cache={("role_definition", "id"): self.roles, "tiers": self.tiers})

    def _is_group(self, pid: str) -> bool:
        return (self.principals.get(pid) or {}).get("type") == "group"

    def _contribution(self, unit: tuple, snapshot: SnapshotInfo) -> Contribution:
        if unit[0] == "i":
            key = unit[1:]
            if key not in self.instances or self._is_group(self.instances[key]["principal_id"]):
                return []
            view = self._view(snapshot, [key], [])
        else:
            group = unit[1]
            if not self._is_group(group) or not self.held_by.get(group):
                return []
            view = self._view(snapshot, sorted(self.held_by[group]), sorted(self.group_records.get(group, ())))
        out = []
        for h in view.user_holdings():
            tier = view.tier(h.role_id)
            if tier is not None:
                out.append((h.principal_id, tier, h.state, h.permanent, h.instance.get("assignment_type"),
                            h.role_id == GLOBAL_ADMIN))
        return out

    def _add(self, contribution: Contribution, sign: int) -> None:
        for pid, tier, state, permanent, kind, ga in contribution:
            if state == "active":
                self.counts["activated" if kind == "Activated" else "assigned"] += sign
                if permanent:
                    self.standing[(tier, pid)] += sign
            elif state == "eligible":
                self.counts["eligible"] += sign
            if ga:
                self.ga[pid] += sign
            if tier in (0, 1):
                self.privileged[pid] += sign

    def _recompute(self, unit: tuple, snapshot: SnapshotInfo) -> None:
        self._add(self.units.pop(unit, []), -1)
        contribution = self._contribution(unit, snapshot)
        if contribution:
            self.units[unit] = contribution
            self._add(contribution, 1)

    # ------------------------------------------------------------------ the sweep
    def advance(self, snapshot: SnapshotInfo) -> None:
        """Apply every version change up to `snapshot` (snapshots in ascending order)."""
        dirty: set[tuple] = set()
        everything = False
        for seq in sorted(s for s in self.changes if self.seq < s <= snapshot.seq):
            for sign, kind, data in sorted(self.changes[seq], key=lambda c: c[0]):  # ends before starts
                everything |= self._apply(sign, kind, data, dirty)
        self.seq = snapshot.seq
        if everything:
            self.role_list, self.tiers = list(self.roles.values()), {}
            dirty = set(self.units) | {("i",) + k for k in self.instances} | {("g", p) for p in self.held_by}
        for unit in dirty:
            self._recompute(unit, snapshot)
        for name in (self.ga, self.privileged, self.standing):
            for k in [k for k, v in name.items() if v == 0]:
                del name[k]

    def break_glass(self) -> set[str]:
        wanted = {a.lower() for a in self.h.config.break_glass.accounts}
        return {pid for pid in self.h.break_glass if pid in self.principals and (
            pid.lower() in wanted or (self.principals[pid].get("upn") or "").lower() in wanted)}


def standing_points(history: HoldingsHistory, snapshots: list[SnapshotInfo]) -> list[Any]:
    """`series.point` for each snapshot (ascending), computed by one sweep."""
    from pimtrail.evidence.series import SnapshotPoint
    from pimtrail.timeutil import iso

    sweep = Sweep(history)
    out = []
    for snap in sorted(snapshots, key=lambda s: s.seq):
        sweep.advance(snap)
        bg = sweep.break_glass()
        standing = Counter()
        for (tier, pid), count in sweep.standing.items():
            if pid not in bg:
                standing[str(tier)] += count
        out.append(SnapshotPoint(
            seq=snap.seq, collected_at=iso(snap.collected_at),
            standing_by_tier={t: standing.get(t, 0) for t in ("0", "1", "2")}, standing_total=sum(standing.values()),
            break_glass=len(bg), eligible=sweep.counts["eligible"], active_assigned=sweep.counts["assigned"],
            activated=sweep.counts["activated"], ga_holders=len(sweep.ga), outside_pim=sweep.counts["outside_pim"],
            privileged_principals=len(sweep.privileged)))
    return out
