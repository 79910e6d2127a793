"""Standing-access points for a run of snapshots, by one sweep over the fact versions.

`series.point(view)` expands every holding of one snapshot; doing that for each of 365 daily snapshots
of a 100,000-user tenant repeats the same work 365 times, while only ~0.5 % changes from day to day.
The sweep keeps the holdings' aggregates and, at each snapshot, recomputes only the *units* whose facts
changed. A unit yields at most one holding, as `SnapshotView.holdings()` expands them:
- a role instance (assignment or eligibility) held directly by a user or service principal;
- a role instance held by a group x one membership record of that group (plain membership, PIM for
  Groups assignment or eligibility): one member's holding through the group.
So a member joining or leaving a group recomputes that member's holdings through the group (one per role
instance of the group), and a role instance of a group one holding per member, not the whole group.

A unit's holding depends only on: its instance, its record, whether a PIM for Groups assignment of the
same member and group hides a plain membership record (`via_pim` in `group_members`), whether the holder
and the member are groups, and the tier of the role. A principal's new version recomputes nothing unless
it turns a principal into a group or back (other fields touch no holding; break-glass accounts are read
from the principals when asked). A new role definition recomputes nothing unless it moves the tier of a
role seen so far; then everything is recomputed. `_holdings` and `_holdings_through` mirror
`SnapshotView.holdings()`/`user_holdings()`; tests compare the sweep with `point(view)` of every snapshot
(tests/test_synthetic.py, and tests/test_standing_sweep.py on random histories churning all of the above).

What a unit's holding is made of is cut out of each fact version once, when the sweep is set up (`Instance`,
`Record`): a day's ~500 units then look up tuples, not dicts. A trend reads only those fields of the facts
(`SWEEP_FIELDS`, `trend_history`); the sweep takes whole facts as well (the pack shares its history).
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter, defaultdict
from typing import Any

from pimtrail.config import Config, is_break_glass
from pimtrail.controls.profiles import Profile
from pimtrail.controls.view import GLOBAL_ADMIN, HOLDING_KINDS, HoldingsHistory, is_activated, is_member, paused_gc
from pimtrail.errors import HistoryError
from pimtrail.store import HistoryStore, SnapshotInfo

INSTANCE_KINDS = ("role_assignment", "role_eligibility")
MEMBER_KINDS = ("group_member", "group_pim_assignment", "group_pim_eligibility")
Key = tuple[str, str]  # (kind, key of the fact as HOLDING_KINDS orders it)
# principal, tier, state, permanent, assignment type, role, via (direct / group / pim_group), group, the instance's
# role name (a view's name of a role without a definition). Atomic values only: the cyclic GC leaves such tuples be,
# and a new version of an instance that moves none of these is no change.
Holding = tuple[str, int, str, bool, str | None, str, str, str | None, str | None]
# What a holding takes from a role instance, cut out of its fact once per version: holder, role, state, permanent,
# assignment type, role name, and whether it counts as made outside PIM (role assignments only).
Instance = tuple[str, str, str, Any, str | None, str | None, bool]
# What a holding takes from a membership record: group, member (as `member_records` and `via_pim` file it), the
# principal its holdings name, permanent, via (group / pim_group; None: it gives none, an owner's record), the
# state it sets (eligible for a PIM for Groups eligibility, else None: the instance's), whether it is an active
# PIM for Groups membership (which stands for the member's plain membership record), and whether that is activated.
Record = tuple[str, str, Any, Any, str | None, str | None, bool, bool]
MEMBER_ORDER = {kind: n for n, kind in enumerate(MEMBER_KINDS)}  # as SnapshotView.group_members lists them
# The fields of the facts a sweep reads, by kind (role definitions: whole, for the profile's tiers). A trend's
# holdings history reads only these (`trend_history`): SQLite cuts them out, and only they are decoded here.
_INSTANCE_FIELDS = ("id", "principal_id", "role_id", "permanent", "assignment_type", "role_name", "outside_pim")
_PIM_FIELDS = ("id", "group_id", "principal_id", "member_id", "access", "permanent", "assignment_type")
SWEEP_FIELDS = {"role_assignment": _INSTANCE_FIELDS, "role_eligibility": _INSTANCE_FIELDS,
                "group_member": ("group_id", "member_id", "principal_id"), "group_pim_assignment": _PIM_FIELDS,
                "group_pim_eligibility": _PIM_FIELDS, "principal": ("id", "type", "upn", "name")}


def trend_history(store: HistoryStore, tenant: str, snapshots: list[SnapshotInfo], profile: Profile,
                  config: Config) -> HoldingsHistory:
    """The holdings history a trend sweeps: every version of the holdings' facts, their `SWEEP_FIELDS` only."""
    return HoldingsHistory(store, tenant, snapshots, profile, config, fields=SWEEP_FIELDS)


class Sweep:
    def __init__(self, history: HoldingsHistory) -> None:
        self.h = history
        self.instances: dict[Key, Instance] = {}
        self.members: dict[Key, Record] = {}  # membership records
        self.principals: dict[str, dict[str, Any]] = {}
        self.groups: set[str] = set()  # principals whose type is group
        self.roles: dict[str, dict[str, Any]] = {}
        self.tiers: dict[str, int | None] = {}  # role id -> tier, kept while the role definitions stay
        self.held_by: dict[str, set[Key]] = defaultdict(set)  # holder -> its role instances
        self.group_records: dict[str, set[Key]] = defaultdict(set)  # group -> its membership records
        self.member_records: dict[str, set[Key]] = defaultdict(set)  # member -> its membership records
        self.via_pim: dict[tuple[str, str], set[Key]] = defaultdict(set)  # (group, member) -> active PIM records
        self.direct: dict[Key, Holding] = {}  # the units' holdings: instance held directly
        self.through: dict[tuple[Key, Key], Holding] = {}  # instance held by a group x membership record
        # the aggregates: holdings by (tier, principal) of permanent active ones, by principal of Global
        # Administrator and of tier 0/1 ones (no zero counts kept: the points count the keys)
        self.standing: dict[tuple[int, str], int] = {}
        self.by_tier: dict[int, int] = {}  # the standing counts summed per tier (break-glass accounts included)
        self.ga: dict[str, int] = {}
        self.privileged: dict[str, int] = {}
        self.counts = dict.fromkeys(("eligible", "assigned", "activated", "outside_pim"), 0)
        self.seq = 0
        # the snapshot before the latest advance, and the units the advance changed (None for the first advance:
        # every unit came then, and ~30,000 records would cost more to free at the next advance than to list)
        self.before, self.moved = 0, None
        # seq -> (+1 starts / -1 ends, kind, data, key), its ends before its starts
        changes: dict[int, list[tuple[int, str, dict[str, Any], Any]]] = defaultdict(list)
        with paused_gc():  # ~70,000 change records and then as many units: no reference cycles among them
            for kind, order in HOLDING_KINDS.items():
                # instances and records: the parts holdings are made of, one object for a version's start and end
                # (what ends is checked to be what is held)
                parts = _instance_parts if kind in INSTANCE_KINDS else _record_parts if kind in MEMBER_KINDS else None
                for vf, vt, data in history.versions[kind]:
                    key = order(data)
                    if parts is not None:
                        key, data = (kind, key), parts(kind, data)
                    changes[vf].append((1, kind, data, key))
                    if vt is not None:
                        changes[vt].append((-1, kind, data, key))
            for pid, versions in history.principals.items():
                for vf, vt, data in versions:
                    changes[vf].append((1, "principal", data, data.get("id")))
                    if vt is not None:
                        changes[vt].append((-1, "principal", data, data.get("id")))
            for seq in changes:
                changes[seq].sort(key=lambda c: c[0])
        self.changes = changes
        self.change_seqs = sorted(changes)

    # ------------------------------------------------------------------ facts in and out
    def _instance(self, sign: int, inst: Instance, key: Key) -> None:
        holder = inst[0]
        if sign < 0:
            if self.instances.get(key) is not inst:
                return
            del self.instances[key]
            self.held_by[holder].discard(key)
        else:
            self.instances[key] = inst
            self.held_by[holder].add(key)
        if inst[6]:
            self.counts["outside_pim"] += sign
        self.dirty_direct.add(key)
        records = self.group_records.get(holder)
        if records:
            self.dirty_through.update([(key, r) for r in records])

    def _record(self, sign: int, kind: str, rec: Record, key: Key) -> None:
        group, member, pim = rec[0], rec[1], rec[6]
        if sign < 0:
            if self.members.get(key) is not rec:
                return
            del self.members[key]
            self.group_records[group].discard(key)
            self.member_records[member].discard(key)
            if pim:
                self.via_pim[(group, member)].discard(key)
        else:
            self.members[key] = rec
            self.group_records[group].add(key)
            self.member_records[member].add(key)
            if pim:
                self.via_pim[(group, member)].add(key)
        instances = self.held_by.get(group)
        if instances:
            self.dirty_through.update([(k, key) for k in instances])
            if kind == "group_pim_assignment":  # may hide or show the member's plain membership record
                plain = ("group_member", f"{group}|{member}")
                if plain in self.members:
                    self.dirty_through.update([(k, plain) for k in instances])

    def _principal(self, sign: int, data: dict[str, Any], pid: str, turned: dict[str, bool]) -> None:
        if pid not in turned:
            turned[pid] = pid in self.groups
        if sign < 0:
            if self.principals.get(pid) is data:
                del self.principals[pid]
                self.groups.discard(pid)
        else:
            self.principals[pid] = data
            self.groups.add(pid) if data.get("type") == "group" else self.groups.discard(pid)

    def _turned(self, turned: dict[str, bool]) -> None:
        """Mark the units of the principals that became groups, or stopped being one (no other field of a
        principal touches a holding)."""
        for pid, was in turned.items():
            if was == (pid in self.groups):
                continue
            for k in self.held_by.get(pid, ()):  # as a holder: direct, or through its members
                self.dirty_direct.add(k)
                self.dirty_through.update((k, r) for r in self.group_records.get(pid, ()))
            for r in self.member_records.get(pid, ()):  # as a member of groups
                self.dirty_through.update((k, r) for k in self.held_by.get(self.members[r][0], ()))

    def _tiers_moved(self, roles: set[str]) -> bool:
        """Whether a role definition that changed changed the tier of a role seen so far."""
        tier_of = self.h.profile.tier_of
        return any(rid in self.tiers and self.tiers[rid] != tier_of(self.roles.get(rid) or {"id": rid})
                   for rid in roles)

    # ------------------------------------------------------------------ units
    def _tier(self, role_id: str) -> int | None:
        tiers = self.tiers
        if role_id not in tiers:
            tiers[role_id] = self.h.profile.tier_of(self.roles.get(role_id) or {"id": role_id})
        return tiers[role_id]

    def _holdings(self, keys: list[Key]) -> list[Holding | None]:
        """The direct holding of each role instance as `SnapshotView.user_holdings()` has it (None: none,
        a group's, or an unprivileged role's). Units are recomputed many at a time, with what they look up
        at hand: ~500 a day, and each lookup through `self` costs about what the unit does."""
        instances, groups, tiers, out = self.instances, self.groups, self.tiers, []
        for key in keys:
            inst = instances.get(key)
            if inst is None or inst[0] in groups:
                out.append(None)
                continue
            pid, role_id, state, permanent, kind, role_name, _ = inst
            tier = tiers[role_id] if role_id in tiers else self._tier(role_id)
            out.append(None if tier is None else
                       (pid, tier, state, permanent, kind, role_id, "direct", None, role_name))
        return out

    def _holdings_through(self, units: list[tuple[Key, Key]]) -> list[Holding | None]:
        """Each member's holding of a group's role instance through one membership record, as
        `SnapshotView.holdings()` expands it with `group_members()`."""
        instances, members, groups, tiers, via_pim, out = (self.instances, self.members, self.groups, self.tiers,
                                                           self.via_pim, [])
        for key, record in units:
            inst, rec = instances.get(key), members.get(record)
            if inst is None or rec is None:
                out.append(None)
                continue
            group, via, pid = inst[0], rec[4], rec[2]
            # (a plain membership: none when the member's PIM for Groups assignment stands for it)
            if rec[0] != group or group not in groups or via is None or pid in groups or (
                    via == "group" and via_pim.get((group, pid))):
                out.append(None)
                continue
            role_id = inst[1]
            tier = tiers[role_id] if role_id in tiers else self._tier(role_id)
            kind = "Activated" if rec[7] else inst[4]  # the membership's activation activates the role too
            out.append(None if tier is None else (pid, tier, rec[5] or inst[2], inst[3] and rec[3], kind, role_id,
                                                  via, group, inst[5]))
        return out

    def _settle(self, units: dict, dirty: set, holdings: Any) -> None:
        """Recompute the dirty units; add the change of their holdings to the aggregates."""
        moved, gone, came, held = self.moved, [], [], units.get
        dirty = list(dirty)
        for unit, new in zip(dirty, holdings(dirty)):
            old = held(unit)
            if old == new:
                continue
            if moved is not None:
                moved.append((unit, old, new))
            if new is None:
                del units[unit]
            else:
                units[unit] = new
                came.append(new)
            if old is not None:
                gone.append(old)
        self._count(gone, -1)
        self._count(came, 1)

    def _count(self, holdings: list[Holding], sign: int) -> None:
        """Add (sign 1) or take away (-1) some holdings in the aggregates."""
        counts, standing, by_tier, ga, privileged = self.counts, self.standing, self.by_tier, self.ga, self.privileged
        for pid, tier, state, permanent, kind, role_id, _, _, _ in holdings:
            if state == "active":
                counts["activated" if kind == "Activated" else "assigned"] += sign
                if permanent:
                    _bump(standing, (tier, pid), sign)
                    by_tier[tier] = by_tier.get(tier, 0) + sign
            else:
                counts["eligible"] += sign
            if role_id == GLOBAL_ADMIN:
                _bump(ga, pid, sign)
            if tier == 0 or tier == 1:
                value = privileged.get(pid, 0) + sign  # _bump, inline: most holdings are privileged
                if value:
                    privileged[pid] = value
                else:
                    del privileged[pid]

    # ------------------------------------------------------------------ the sweep
    def advance(self, snapshot: SnapshotInfo) -> None:
        """Apply every version change up to `snapshot` (snapshots in ascending order)."""
        with paused_gc():  # the first advance makes every unit (~35,000 on a large tenant)
            self._advance(snapshot)

    def _advance(self, snapshot: SnapshotInfo) -> None:
        self.dirty_direct: set[Key] = set()
        self.dirty_through: set[tuple[Key, Key]] = set()
        self.moved = [] if self.seq else None  # (unit, holding before, holding after) of the units changed
        self.before = self.seq
        turned: dict[str, bool] = {}
        roles: set[str] = set()
        seqs = self.changes, self.change_seqs
        for i in range(bisect_right(seqs[1], self.seq), bisect_right(seqs[1], snapshot.seq)):
            for sign, kind, data, key in seqs[0][seqs[1][i]]:
                if kind in INSTANCE_KINDS:
                    self._instance(sign, data, key)
                elif kind == "principal":
                    self._principal(sign, data, key, turned)
                elif kind == "role_definition":
                    roles.add(key)
                    if sign < 0:
                        if self.roles.get(key) is data:
                            del self.roles[key]
                    else:
                        self.roles[key] = data
                else:
                    self._record(sign, kind, data, key)
        self.seq = snapshot.seq
        if roles and self._tiers_moved(roles):  # everything again
            self.tiers = {}
            self.dirty_direct = set(self.direct) | set(self.instances)
            self.dirty_through = set(self.through) | {(k, r) for holder, keys in self.held_by.items()
                                                      for r in self.group_records.get(holder, ()) for k in keys}
        elif turned:
            self._turned(turned)
        self._settle(self.direct, self.dirty_direct, self._holdings)
        self._settle(self.through, self.dirty_through, self._holdings_through)
        del self.dirty_direct, self.dirty_through

    # ------------------------------------------------------------------ the holders of the current snapshot
    def top_standing(self, limit: int = 10) -> list[dict[str, Any]]:
        """`series.top_standing` of a view of the current snapshot: the principals holding tiered roles
        permanently and actively, by score (tier weights) then name, ties in the view's order of holdings."""
        from pimtrail.evidence.series import TIER_WEIGHT

        first: dict[str, tuple] = {}  # principal -> where the view lists its first standing holding
        score: dict[str, int] = defaultdict(int)
        roles: dict[str, set[str]] = defaultdict(set)
        for units in (self.direct, self.through):
            for unit, h in units.items():
                pid, tier, state, permanent = h[:4]
                if state != "active" or not permanent:
                    continue
                where = _position(unit)
                if pid not in first or where < first[pid]:
                    first[pid] = where
                score[pid] += TIER_WEIGHT[tier]
                roles[pid].add(f"{self._role(h[5], h[8], self.seq).get('name')} (tier {tier})")
        entries = []
        for pid in sorted(first, key=first.__getitem__):
            principal = self.principals.get(pid) or {"id": pid, "type": "unknown"}
            entries.append({"principal_id": pid, "principal": _name(principal, pid), "type": principal.get("type"),
                            "score": score[pid], "roles": roles[pid]})
        ranked = sorted(entries, key=lambda e: (-e["score"], e["principal"] or ""))
        glass = self.break_glass()
        for e in ranked:
            e["break_glass"] = e["principal_id"] in glass
            e["roles"] = sorted(e["roles"])
        return ranked[:limit]

    def holding_changes(self) -> dict[str, list[dict[str, Any]]]:
        """`series.holding_changes` of views of the snapshot before the latest advance and the current one
        (every holding added when the latest advance was the first): the holdings (by `holding_key`) held
        in one and not in the other. A holding key that came or went did so in every unit holding it, so
        only the units this advance changed are described; the view describes a key by the last of its
        holdings that it lists."""
        moved = self.moved if self.moved is not None else \
            [(unit, None, h) for units in (self.direct, self.through) for unit, h in units.items()]
        came, went = Counter(), Counter()
        for _, old, new in moved:
            if old is not None:
                went[_key(old)] += 1
            if new is not None:
                came[_key(new)] += 1
        touched = {k[0] for k in came} | {k[0] for k in went}
        now = Counter(_key(h) for units in (self.direct, self.through) for h in units.values() if h[0] in touched)
        added = {k for k in came if not now[k] - came[k] + went[k]}  # held now (it came), not before
        removed = {k for k in went if not now[k]}  # held before (it went), not now
        last: dict[tuple, tuple] = {}  # (added?, key) -> (position, holding) of its last holding in the view
        for unit, old, new in moved:
            for h, side in ((old, removed), (new, added)):
                if h is not None and _key(h) in side:
                    mark, where = (side is added, _key(h)), _position(unit)
                    if mark not in last or where > last[mark][0]:
                        last[mark] = (where, h)
        return {name: [self._describe(last[(name == "added", k)][1], self.seq if name == "added" else self.before)
                       for k in sorted(keys)] for name, keys in (("added", added), ("removed", removed))}

    def _describe(self, h: Holding, seq: int) -> dict[str, Any]:
        pid = h[0]
        principal = (self.principals.get(pid) if seq == self.seq else _at(self.h.principals.get(pid, ()), seq)) \
            or {"id": pid, "type": "unknown"}
        return {"principal": _name(principal, pid), "principal_id": pid, "role": self._role(h[5], h[8], seq).get("name"),
                "state": h[2], "permanent": h[3], "via": h[6]}

    def _role(self, role_id: str, role_name: str | None, seq: int) -> dict[str, Any]:
        """The role definition at snapshot `seq` as a view has it for a holding of an instance naming the role
        `role_name`."""
        if seq == self.seq:
            role = self.roles.get(role_id)
        else:
            if not hasattr(self, "_role_versions"):
                self._role_versions: dict[str, list] = defaultdict(list)
                for v in self.h.versions["role_definition"]:
                    self._role_versions[v[2]["id"]].append(v)
            role = _at(self._role_versions.get(role_id, ()), seq)
        return role or {"id": role_id, "name": role_name}

    def break_glass(self) -> set[str]:
        wanted = self.h.config.break_glass.wanted()
        return {pid for pid in self.h.break_glass
                if pid in self.principals and is_break_glass(wanted, pid, self.principals[pid].get("upn"))}


def _key(h: Holding) -> tuple:
    """`series.holding_key` of a unit's holding."""
    return (h[0], h[5], h[2], h[6], h[7] or "")


def _position(unit: Any) -> tuple:
    """Where `SnapshotView.user_holdings()` lists the holding of a unit: role assignments, then eligibilities,
    each in key order, and after each instance its holder's members as `group_members` lists them (plain
    memberships, then PIM for Groups assignments, then eligibilities, each in key order)."""
    if isinstance(unit[0], str):  # an instance held directly
        return (unit[0] != "role_assignment", unit[1], -1, "")
    (kind, key), (record_kind, record_key) = unit
    return (kind != "role_assignment", key, MEMBER_ORDER[record_kind], record_key)


def _at(versions: Any, seq: int) -> dict[str, Any] | None:
    """The data of the version (valid_from, valid_to, data) valid in snapshot `seq`."""
    return next((d for vf, vt, d in versions if vf <= seq and (vt is None or vt > seq)), None)


def _name(principal: dict[str, Any], pid: str) -> str:
    return principal.get("upn") or principal.get("name") or pid  # Holding.principal_name


def _member(data: dict[str, Any]) -> str:
    return data.get("member_id") or data.get("principal_id")


def _instance_parts(kind: str, data: dict[str, Any]) -> Instance:
    """The parts of a role instance's fact its holdings are made of (a view reads the same fields)."""
    get = data.get
    pid, role_id, permanent = get("principal_id"), get("role_id"), get("permanent")
    if pid is None or role_id is None or permanent is None or get("id") is None:
        _refuse(kind, data, ("id", "principal_id", "role_id", "permanent"))
    return (pid, role_id, "active" if kind == "role_assignment" else "eligible", permanent,
            "Activated" if is_activated(data) else get("assignment_type"), get("role_name"),
            kind == "role_assignment" and bool(get("outside_pim")))


def _record_parts(kind: str, data: dict[str, Any]) -> Record:
    """The parts of a membership record's fact its holdings are made of (see `Record`), as
    `SnapshotView.group_members` reads them."""
    get = data.get
    group = get("group_id")
    if kind == "group_member":
        if group is None or get("member_id") is None:
            _refuse(kind, data, ("group_id", "member_id"))
        return group, _member(data), data["member_id"], True, "group", None, False, False
    if not is_member(data):  # an owner's record gives no holding
        if group is None or get("id") is None:
            _refuse(kind, data, ("id", "group_id"))
        return group, _member(data), None, None, None, None, False, False
    pid, permanent = get("principal_id"), get("permanent")
    if group is None or pid is None or permanent is None or get("id") is None:
        _refuse(kind, data, ("id", "group_id", "principal_id", "permanent"))
    return (group, _member(data), pid, permanent, "pim_group", "eligible" if kind == "group_pim_eligibility" else None,
            kind == "group_pim_assignment", kind == "group_pim_assignment" and is_activated(data))


def _refuse(kind: str, data: dict[str, Any], names: tuple[str, ...]) -> None:
    """A fact without a field a holding cannot be made without (or holding null) is refused, not swept as if
    it held nothing."""
    missing = ", ".join(name for name in names if data.get(name) is None)
    raise HistoryError(f"a stored {kind} fact ({data.get('id') or data.get('group_id') or '?'}) has no {missing}: "
                       "the holdings it stands for cannot be counted")


def _bump(counter: dict, key: Any, sign: int) -> None:
    """Add to a count, dropping it at zero (the points count the keys)."""
    value = counter.get(key, 0) + sign
    if value:
        counter[key] = value
    else:
        del counter[key]


def standing_points(history: HoldingsHistory, snapshots: list[SnapshotInfo], sweep: Sweep | None = None) -> list[Any]:
    """`series.point` for each snapshot (ascending), computed by one sweep (`sweep`, new or passed in: it ends
    at the last snapshot, for `top_standing` and `holding_changes`)."""
    from pimtrail.evidence.series import SnapshotPoint
    from pimtrail.timeutil import iso

    sweep = Sweep(history) if sweep is None else sweep
    out = []
    for snap in sorted(snapshots, key=lambda s: s.seq):
        sweep.advance(snap)
        bg = sweep.break_glass()
        standing = Counter({str(tier): count for tier, count in sweep.by_tier.items()})
        for tier in sweep.by_tier:  # less the break-glass accounts' own
            for pid in bg:
                standing[str(tier)] -= sweep.standing.get((tier, pid), 0)
        out.append(SnapshotPoint(
            seq=snap.seq, collected_at=iso(snap.collected_at),
            standing_by_tier={t: standing.get(t, 0) for t in ("0", "1", "2")}, standing_total=sum(standing.values()),
            break_glass=len(bg), eligible=sweep.counts["eligible"], active_assigned=sweep.counts["assigned"],
            activated=sweep.counts["activated"], ga_holders=len(sweep.ga), outside_pim=sweep.counts["outside_pim"],
            privileged_principals=len(sweep.privileged)))
    return out
