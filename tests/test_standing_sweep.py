"""The standing sweep (evidence/standing.py) against `point(view)` of every snapshot, on random histories that
churn what the synthetic tenant leaves still: group members and PIM for Groups records (which hide plain
memberships), principals turning into groups and back, principal fields that touch no holding, role
instances changing holder or fields, role definitions moving tiers or not."""

from __future__ import annotations

import copy
import random
from datetime import datetime, timedelta, timezone

import pytest

from pimtrail.config import parse_config
from pimtrail.controls.profiles import load_profile
from pimtrail.controls.view import GLOBAL_ADMIN, HoldingsHistory
from pimtrail.evidence.series import point
import series_reference as reference
from pimtrail.errors import HistoryError
from pimtrail.evidence.standing import SWEEP_FIELDS, Sweep, standing_points
from pimtrail.store import SnapshotInfo

USERS = [f"u{i}" for i in range(10)] + ["bg"]
GROUPS = ["g0", "g1", "g2", "g3"]  # g3 turns into a user and back; u9 into a group and back
ROLES = {GLOBAL_ADMIN: "Global Administrator", "r1": "alpha role", "r2": "beta role", "r3": "gamma role"}


def snapshot(seq: int) -> SnapshotInfo:
    at = datetime(2026, 7, 1, 6, tzinfo=timezone.utc) + timedelta(days=seq)
    return SnapshotInfo(seq, "t", seq, at, at, "test", "", "0", "complete", 0, 0, "", "", "")


def random_state(rng: random.Random, state: dict | None) -> dict:
    """The facts of one snapshot by (kind, key): the previous ones with a few changed."""
    s = dict(state or {})
    def put(kind, key, data):
        s[(kind, key)] = data

    if state is None:
        for pid in USERS:
            put("principal", pid, {"id": pid, "type": "user", "upn": f"{pid}@x", "name": pid.upper()})
        for pid in ("u4", "u5", "u6"):  # principals of one name: ties in the ranking of standing holders
            put("principal", pid, {"id": pid, "type": "user", "upn": None, "name": "Twin"})
        for gid in GROUPS:
            put("principal", gid, {"id": gid, "type": "group", "name": gid.upper()})
        for rid, name in ROLES.items():
            put("role_definition", rid, {"id": rid, "name": name, "privileged": False, "description": ""})
    for _ in range(rng.randint(3, 14)):
        op = rng.randrange(9)
        if op <= 1:  # a role instance appears, changes (holder, permanence, type) or goes
            kind = rng.choice(("role_assignment", "role_eligibility"))
            iid = f"{kind[5]}{rng.randrange(14)}"
            if (kind, iid) in s and rng.random() < 0.4:
                del s[(kind, iid)]
            else:
                put(kind, iid, {"id": iid, "role_id": rng.choice(list(ROLES)),
                                "principal_id": rng.choice(USERS + GROUPS + ["gone"]), "permanent": rng.random() < 0.6,
                                "assignment_type": rng.choice(("Assigned", "Activated")),
                                "role_name": rng.choice(("Alpha", "Beta")),  # a view's name of a role not defined
                                "outside_pim": rng.random() < 0.2, "start": f"2026-0{rng.randint(1, 9)}-01"})
        elif op == 2:  # plain membership
            g, m = rng.choice(GROUPS + ["u9"]), rng.choice(USERS + GROUPS)
            key = f"{g}|{m}"
            if ("group_member", key) in s:
                del s[("group_member", key)]
            else:
                put("group_member", key, {"group_id": g, "member_id": m})
        elif op in (3, 4):  # PIM for Groups: active (hides the plain membership when access is member) or eligible
            kind = "group_pim_assignment" if op == 3 else "group_pim_eligibility"
            pid = f"{kind[10]}{rng.randrange(8)}"
            if (kind, pid) in s and rng.random() < 0.4:
                del s[(kind, pid)]
            else:
                put(kind, pid, {"id": pid, "group_id": rng.choice(GROUPS), "principal_id": rng.choice(USERS),
                                "access": rng.choice(("member", "member", "owner")), "permanent": rng.random() < 0.5,
                                "end": rng.choice((None, "2026-12-31")),
                                # an activated PIM for Groups membership activates the group's roles (Graph's spelling)
                                "assignment_type": rng.choice(("assigned", "activated"))})
        elif op in (5, 6):  # a principal's fields that touch no holding (name, last sign-in) or break-glass UPN
            pid = rng.choice(USERS + GROUPS)
            if ("principal", pid) in s:
                data = dict(s[("principal", pid)], name=f"{pid}-{rng.random():.3f}")
                if pid == "u3" and rng.random() < 0.5:
                    data["upn"] = rng.choice(("bg@x", "u3@x"))
                if pid in ("u4", "u5", "u6") and rng.random() < 0.7:
                    data["upn"], data["name"] = None, "Twin"
                put("principal", pid, data)
        elif op == 7:  # a principal becomes a group or stops being one, or leaves the directory
            pid = rng.choice(("g3", "u9", "u2"))
            if ("principal", pid) in s and rng.random() < 0.3:
                del s[("principal", pid)]
            else:
                old = s.get(("principal", pid)) or {"id": pid, "type": "user"}
                put("principal", pid, dict(old, type="user" if old.get("type") == "group" else "group"))
        else:  # a role definition: a new description (tier stays), its privileged flag (tier moves), or it goes
            rid = rng.choice(("r3", "r2", GLOBAL_ADMIN))  # (and comes back: Global Administrator is tiered by id)
            old = s.get(("role_definition", rid))
            if old is None:
                put("role_definition", rid, {"id": rid, "name": ROLES[rid], "privileged": False, "description": ""})
            elif rid == GLOBAL_ADMIN and rng.random() < 0.3:
                del s[("role_definition", rid)]
            elif rng.random() < 0.5:
                put("role_definition", rid, dict(old, description=str(rng.random())))
            else:
                put("role_definition", rid, dict(old, privileged=not old["privileged"]))
    return s


def history_of(states: list[dict], config) -> tuple[HoldingsHistory, list[SnapshotInfo]]:
    """A HoldingsHistory as the store would give it: a version per run of equal facts of one key."""
    snaps = [snapshot(i + 1) for i in range(len(states))]
    open_: dict = {}  # (kind, key) -> [valid_from, valid_to, data]
    versions: list = []
    for snap, state in zip(snaps, states):
        for k in list(open_):
            if k not in state or state[k] != open_[k][2]:
                open_[k][1] = snap.seq
                versions.append((k, open_.pop(k)))
        for k, data in state.items():
            if k not in open_:
                open_[k] = [snap.seq, None, dict(data)]
    versions += list(open_.items())
    h = object.__new__(HoldingsHistory)
    h.snapshots, h.config, h.profile, h.fields = snaps, config, load_profile(None, config), None
    h.versions = {kind: [] for kind in ("role_definition", "role_assignment", "role_eligibility", "group_member",
                                        "group_pim_assignment", "group_pim_eligibility")}
    h.principals = {}
    for (kind, key), (vf, vt, data) in versions:
        (h.principals.setdefault(key, []) if kind == "principal" else h.versions[kind]).append((vf, vt, data))
    wanted = {a.lower() for a in config.break_glass.accounts}
    h.break_glass = {pid for pid, vs in h.principals.items() if pid.lower() in wanted
                     or any((d.get("upn") or "").lower() in wanted for _, _, d in vs)}
    return h, snaps


def narrowed(history: HoldingsHistory) -> HoldingsHistory:
    """The history as a trend reads it (`trend_history`): of each fact the sweep's fields only, one it lacks as
    None (`HistoryStore.version_rows(fields=...)`)."""
    h = copy.copy(history)
    h.fields = SWEEP_FIELDS

    def cut(kind, versions):
        names = h.fields_of(kind)
        return versions if names is None else [(vf, vt, {n: d.get(n) for n in names}) for vf, vt, d in versions]

    h.versions = {kind: cut(kind, versions) for kind, versions in history.versions.items()}
    h.principals = {pid: cut("principal", versions) for pid, versions in history.principals.items()}
    return h


@pytest.fixture(scope="module")
def config():
    return parse_config({"break_glass": {"accounts": ["bg", "BG@x"]}, "tiers": {"alpha role": 1, "beta role": 2}})


@pytest.mark.parametrize("narrow", [False, True], ids=["whole facts", "sweep fields"])
@pytest.mark.parametrize("seed", range(40))
def test_sweep_equals_a_view_per_snapshot_under_churn(seed, narrow, config):
    rng = random.Random(seed)
    states = [random_state(rng, None)]
    for _ in range(11):
        states.append(random_state(rng, states[-1]))
    history, snaps = history_of(states, config)
    expected = [point(history.view(s)) for s in snaps]
    history = narrowed(history) if narrow else history
    assert standing_points(history, snaps) == expected
    assert standing_points(history, snaps[4:]) == expected[4:]  # starting anywhere
    assert standing_points(history, snaps[::3]) == expected[::3]  # skipping snapshots


@pytest.mark.parametrize("narrow", [False, True], ids=["whole facts", "sweep fields"])
@pytest.mark.parametrize("seed", range(40))
def test_sweep_top_holders_and_changes_equal_those_of_views(seed, narrow, config):
    """`Sweep.top_standing` and `Sweep.holding_changes` after each advance equal what views of the snapshot (and
    of the one advanced from before) give: ties in score and name broken in the order the view lists holdings,
    holdings of a key described by the view's last one, role names from the instance when no definition."""
    rng = random.Random(seed)
    states = [random_state(rng, None)]
    for _ in range(11):
        states.append(random_state(rng, states[-1]))
    history, snaps = history_of(states, config)
    views = {s.seq: history.view(s) for s in snaps}
    history = narrowed(history) if narrow else history
    for run in (snaps, snaps[4:], snaps[::3]):
        sweep, before = Sweep(history), None
        for snap in run:
            sweep.advance(snap)
            assert sweep.top_standing(limit=50) == reference.top_standing(views[snap.seq], limit=50), snap.seq
            assert sweep.top_standing() == reference.top_standing(views[snap.seq])
            assert sweep.holding_changes() == reference.holding_changes(before, views[snap.seq]), snap.seq
            before = views[snap.seq]


def test_changes_that_touch_no_holding_recompute_nothing(config, monkeypatch):
    first = random_state(random.Random(7), None)
    first[("role_assignment", "a1")] = {"id": "a1", "role_id": "r1", "principal_id": "g0", "permanent": True}
    first[("group_member", "g0|u1")] = {"group_id": "g0", "member_id": "u1"}
    second = dict(first)  # new names for everyone, a new description for a role: no holding moves
    for (kind, key), data in first.items():
        if kind == "principal":
            second[(kind, key)] = dict(data, name=data.get("name", "") + "!")
    second[("role_definition", "r1")] = dict(first[("role_definition", "r1")], description="new")
    history, snaps = history_of([first, second], config)
    sweep = Sweep(history)
    sweep.advance(snaps[0])
    assert sweep.through  # u1 holds r1 through g0
    calls = []
    monkeypatch.setattr(Sweep, "_holdings", lambda self, units: calls.extend(units) or [None] * len(units))
    monkeypatch.setattr(Sweep, "_holdings_through", lambda self, units: calls.extend(units) or [None] * len(units))
    sweep.advance(snaps[1])
    assert calls == []
    monkeypatch.undo()
    assert standing_points(history, snaps) == [point(history.view(s)) for s in snaps]


def test_a_history_of_some_fields_has_no_light_views(config):
    history, snaps = history_of([random_state(random.Random(3), None)], config)
    with pytest.raises(ValueError, match="no light views"):
        narrowed(history).view(snaps[0])


@pytest.mark.parametrize("kind, field", [("role_assignment", "permanent"), ("role_eligibility", "principal_id"),
                                         ("group_member", "member_id"), ("group_pim_assignment", "permanent")])
def test_a_fact_without_what_a_holding_is_made_of_is_refused(kind, field, config):
    """Read for some fields only, a missing field reads as None: the sweep refuses it rather than count the
    holding as if it were not permanent, or held by no one."""
    state = random_state(random.Random(5), None)
    facts = {"role_assignment": {"id": "a1", "role_id": "r1", "principal_id": "u1", "permanent": True},
             "role_eligibility": {"id": "e1", "role_id": "r1", "principal_id": "u1", "permanent": False},
             "group_member": {"group_id": "g0", "member_id": "u1"},
             "group_pim_assignment": {"id": "p1", "group_id": "g0", "principal_id": "u2", "access": "member",
                                      "permanent": True}}
    data = dict(facts[kind], **{field: None})
    state[(kind, data.get("id") or "g0|u1")] = data
    history, snaps = history_of([state], config)
    with pytest.raises(HistoryError, match=f"{kind} fact .* has no {field}"):
        standing_points(narrowed(history), snaps)


@pytest.mark.parametrize("narrow", [False, True], ids=["whole facts", "sweep fields"])
def test_an_activated_pim_for_groups_membership_counts_as_activated_not_assigned(narrow, config):
    """A group assigned a role, and a member whose PIM for Groups membership is activated (Graph: "activated"):
    the member holds the role just in time (the sample's Q3 pack counted it as assigned, found by reconciling)."""
    base = random_state(random.Random(0), None)
    base = {k: v for k, v in base.items() if k[0] in ("principal", "role_definition")}
    base[("role_assignment", "a-g0")] = {"id": "a-g0", "role_id": "r1", "principal_id": "g0", "permanent": True,
                                         "assignment_type": "Assigned", "outside_pim": False}
    states = []
    for how in ("assigned", "activated"):
        states.append(base | {("group_pim_assignment", "p-u1"): {
            "id": "p-u1", "group_id": "g0", "principal_id": "u1", "access": "member", "permanent": False,
            "end": "2026-12-31", "assignment_type": how}})
    history, snaps = history_of(states, config)
    points = [point(history.view(s)) for s in snaps]
    assert [(p.active_assigned, p.activated) for p in points] == [(1, 0), (0, 1)]
    assert standing_points(narrowed(history) if narrow else history, snaps) == points
