"""The audit entry a roll-forward cites for a movement is the one that made it: the latest of those that move
that kind of holding that way, not any entry about the holder (an independent reconciliation of the sample's
Q3 pack found an expired activation and an eligibility cited for other movements)."""

from __future__ import annotations

from pimtrail.controls.view import Holding
from pimtrail.evidence.rollforward import explain

USER, GROUP, ROLE = "u-1", "g-1", "r-1"


def holding(via: str, state: str = "active") -> Holding:
    membership = {"direct": None, "group": "membership"}.get(
        via, "group_pim_eligibility" if state == "eligible" else "group_pim_assignment")
    return Holding(USER, {"id": USER, "type": "user"}, ROLE, {"id": ROLE}, state, False, via,
                   None if via == "direct" else GROUP, False, {}, membership=membership)


def event(n: int, time: str, activity: str, group: str | None = None, role: str | None = ROLE) -> dict:
    return {"id": f"e{n}", "time": time, "activity": activity, "principal": {"id": USER}, "group_id": group,
            "role_id": role}


def cited(change: str, h: Holding, events: list[dict]) -> str | None:
    found = explain(change, h, events, [], {ROLE})
    return found and found["id"]


def test_the_latest_activation_explains_a_role_held_at_the_next_snapshot():
    events = [event(1, "2026-09-23T08:44:00Z", "Add member to role requested (PIM activation)"),
              event(2, "2026-09-23T08:45:00Z", "Add member to role completed (PIM activation)"),
              event(3, "2026-09-23T16:44:20Z", "Remove member from role (PIM activation expired)"),
              event(4, "2026-09-30T05:10:00Z", "Add member to role requested (PIM activation)"),
              event(5, "2026-09-30T05:10:20Z", "Add member to role completed (PIM activation)")]
    assert cited("added", holding("direct"), events) == "e5"
    assert cited("removed", holding("direct"), events) == "e3"


def test_a_plain_membership_moves_by_its_own_entries_only():
    events = [event(1, "2026-08-26T10:00:00Z", "Add eligible member to role in PIM completed (timebound)", GROUP, None),
              event(2, "2026-08-26T10:05:00Z", "Remove member from role (PIM activation expired)"),
              event(3, "2026-08-26T10:20:00Z", "Remove member from group", GROUP, None),
              event(4, "2026-08-26T10:30:00Z", "Remove member from group", "g-other", None)]
    assert cited("removed", holding("group"), events) == "e3"
    assert cited("added", holding("pim_group", "eligible"), events) == "e1"
    assert cited("removed", holding("pim_group", "eligible"), events) is None  # nothing removed an eligibility


def member_of(via: str, role_state: str, membership: str | None) -> Holding:
    return Holding(USER, {"id": USER, "type": "user"}, ROLE, {"id": ROLE}, role_state, False, via, GROUP, False, {},
                   membership=membership)


def test_a_group_eligible_for_a_role_moves_its_members_by_their_membership_entries():
    events = [event(1, "2026-08-26T10:00:00Z", "Add member to group", GROUP, None),
              event(2, "2026-08-26T11:00:00Z", "Add member to group in PIM completed (timebound)", GROUP, None),
              event(3, "2026-08-26T12:00:00Z", "Add eligible member to group in PIM completed (timebound)",
                    GROUP, None)]
    # the group is eligible for the role: its members hold it eligible, whatever their membership
    assert cited("added", member_of("group", "eligible", "membership"), events[:1]) == "e1"
    assert cited("added", member_of("pim_group", "eligible", "group_pim_assignment"), events) == "e2"
    assert cited("added", member_of("pim_group", "eligible", "group_pim_eligibility"), events) == "e3"


def test_another_role_s_later_activation_does_not_explain_a_group_membership():
    events = [event(1, "2026-08-26T09:00:00Z", "Add member to group in PIM completed (timebound)", GROUP, None),
              event(2, "2026-08-26T11:00:00Z", "Add member to role completed (PIM activation)", None, "r-other")]
    assert cited("added", member_of("pim_group", "active", "group_pim_assignment"), events) == "e1"
