"""The tenant's state at any moment: assignments, activations, group links, sign-ins.

It also plays the monthly access reviews: the scenario's decisions are applied here, so an
assignment a review removed is gone from every later snapshot, and it checks every
activation against the eligibility and PIM settings in force when it was requested.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .ids import at_utc, duration
from .policies import Policies
from .scenario import Activation, Assignment, GroupLink, Principal, Role, Scenario, date_at

_WEEKDAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
_SIGNIN_BEFORE_ACTION = timedelta(minutes=2)


@dataclass
class ReviewItem:
    role: Role
    principal: Principal
    assignments: list[Assignment]
    decision: str = "NotReviewed"  # Approve | Deny | NotReviewed
    by: Principal | None = None
    at: datetime | None = None
    why: str = ""
    recommendation: str = "NoInfoAvailable"


@dataclass
class ReviewRound:
    label: str  # "2026-07"
    opens: datetime
    closes: datetime
    applied: datetime
    items: list[ReviewItem] = field(default_factory=list)


@dataclass
class Review:
    """One recurring access review definition (`[[review]]`) and the rounds it ran."""

    cfg: dict[str, Any]
    roles: list[Role]  # its `roles`, or every high-risk role when it names none
    rounds: list[ReviewRound] = field(default_factory=list)


class Timeline:
    def __init__(self, s: Scenario) -> None:
        self.s = s
        self.policies = Policies(s)
        self.high_risk = [r for r in s.roles.values() if r.high_risk]
        self.reviews = [Review(cfg, [s.role_by_key(k) for k in cfg["roles"]] if "roles" in cfg else self.high_risk)
                        for cfg in s.raw.get("review", [])]
        covered = [r.key for rv in self.reviews for r in rv.roles]
        if len(covered) != len(set(covered)):
            raise ValueError("two access reviews cover the same role")
        self.actions = self._collect_actions()
        self._play_reviews()
        self._check_activations()
        self._check_assignments()

    # ------------------------------------------------------------------ sign-ins
    def _collect_actions(self) -> dict[str, list[datetime]]:
        """Every time a person acted in the tenant (each act implies a sign-in)."""
        acts: dict[str, list[datetime]] = {p.key: [] for p in self.s.people()}

        def add(p: Principal | None, t: datetime | None) -> None:
            if p is not None and t is not None and p.kind == "user":
                acts[p.key].append(t - _SIGNIN_BEFORE_ACTION)

        for a in self.s.activations:
            add(a.who, a.at)
            add(a.approver, a.decided)
        for a in self.s.assignments:
            add(a.by, a.start)
            add(a.until_by, a.until)
        for link in self.s.group_links:
            add(link.by, link.start)
            add(link.by, link.until)
        for change in self.policies.changes():
            add(change.by, change.at)
        for rnd in [r for rv in self.reviews for r in rv.cfg.get("round", [])]:
            for d in rnd["decisions"]:
                add(self.s.ref(d["by"], ("user",)), at_utc(d["at"]))
        return {k: sorted(v) for k, v in acts.items()}

    def last_signin(self, p: Principal, t: datetime) -> datetime | None:
        horizon = t
        if p.disabled is not None:
            horizon = min(horizon, p.disabled)
        candidates = [x for x in p.signins + self.actions.get(p.key, []) if x <= horizon]
        habit_end = min(horizon, p.signin_until) if p.signin_until else horizon
        habit = self._habit_last(p, habit_end)
        if habit is not None:
            candidates.append(habit)
        candidates = [c for c in candidates if c >= p.created]
        return max(candidates) if candidates else None

    @staticmethod
    def _habit_last(p: Principal, t: datetime) -> datetime | None:
        parts = p.signin.split()
        if parts[0] == "none":
            return None
        if parts[0] == "workdays" and len(parts) == 2:
            days, hhmm = {0, 1, 2, 3, 4}, parts[1]
        elif parts[0] == "weekly" and len(parts) == 3:
            days, hhmm = {_WEEKDAYS[parts[1]]}, parts[2]
        else:
            raise ValueError(f"{p.key}: unknown sign-in habit {p.signin!r}")
        for back in range(8):
            day = (t - timedelta(days=back)).date()
            if day.weekday() in days:
                when = date_at(day, hhmm)
                if when <= t:
                    return when if when >= p.created else None
        return None

    # ------------------------------------------------------------------ state
    def assignments_at(self, t: datetime, type_: str) -> list[Assignment]:
        return [a for a in self.s.assignments if a.type == type_ and a.live(t)]

    def activations_at(self, t: datetime) -> list[Activation]:
        return [a for a in self.s.activations if a.covers(t)]

    def eligibility(self, who: Principal, role: Role, t: datetime) -> Assignment | None:
        for a in self.assignments_at(t, "eligible"):
            if a.who is who and a.role is role:
                return a
        return None

    def links_at(self, group: Principal, t: datetime, access: str, eligible: bool) -> list[GroupLink]:
        return [k for k in self.s.group_links if k.group is group and k.access == access
                and k.eligible == eligible and k.live(t)]

    def group_members_at(self, group: Principal, t: datetime) -> list[Principal]:
        members = [k.who for k in self.links_at(group, t, "member", False)]
        members += [a.who for a in self.activations_at(t) if a.group is group]
        unique = {p.key: p for p in members}
        return sorted(unique.values(), key=lambda p: p.name)

    def role_holders(self, t: datetime) -> set[str]:
        """Users who hold or are eligible for a directory role, directly or via a group."""
        holders: set[str] = set()
        for a in self.assignments_at(t, "active") + self.assignments_at(t, "eligible"):
            if a.who.kind == "user":
                holders.add(a.who.key)
            elif a.who.kind == "group":
                holders.update(m.key for m in self.group_members_at(a.who, t))
                holders.update(k.who.key for k in self.links_at(a.who, t, "member", True))
        holders.update(a.who.key for a in self.activations_at(t) if a.role is not None)
        return holders

    # ------------------------------------------------------------------ access reviews
    def _play_reviews(self) -> None:
        """Every round of every review, in time order: a removal shapes the scope of later rounds."""
        rounds = sorted(((at_utc(rnd["opens"]), n, rv, rnd) for n, rv in enumerate(self.reviews)
                         for rnd in rv.cfg.get("round", [])), key=lambda x: (x[0], x[1]))
        for _, _, rv, rnd in rounds:
            rv.rounds.append(self._play_round(rv, rnd))

    def _play_round(self, rv: Review, rnd: dict[str, Any]) -> ReviewRound:
        cfg = rv.cfg
        lookback = duration(cfg["recommendation_lookback"])
        opens = at_utc(rnd["opens"])
        if opens.day != cfg["day_of_month"] or opens.date() < cfg["first"] or opens < at_utc(cfg["created"]):
            raise ValueError(f"{cfg['name']} round {opens}: not on its recurrence (from {cfg['first']}, "
                             f"day {cfg['day_of_month']})")
        closes = opens + timedelta(days=cfg["duration_days"])
        applied = closes + timedelta(minutes=cfg["apply_delay_minutes"])
        this = ReviewRound(opens.strftime("%Y-%m"), opens, closes, applied)
        scope: dict[tuple[str, str], ReviewItem] = {}
        in_scope = {r.key for r in rv.roles}
        for a in self.assignments_at(opens, "active") + self.assignments_at(opens, "eligible"):
            if a.role.key in in_scope and a.who.kind in ("user", "group"):
                item = scope.setdefault((a.role.key, a.who.key), ReviewItem(a.role, a.who, []))
                item.assignments.append(a)
        for item in scope.values():
            if item.principal.kind == "user" and cfg.get("recommendations", False):
                seen = self.last_signin(item.principal, opens)
                inactive = seen is None or opens - seen > lookback
                disabled = item.principal.disabled is not None and item.principal.disabled <= opens
                item.recommendation = "Deny" if inactive or disabled else "Approve"
        for d in rnd["decisions"]:
            item = scope.get((d["role"], d["who"]))
            if item is None:
                raise ValueError(f"review {this.label}: {d['who']} is not in scope for {d['role']}")
            if d["decision"] not in ("Approve", "Deny"):
                raise ValueError(f"review {this.label}: bad decision {d['decision']!r}")
            item.decision, item.why = d["decision"], d.get("why", "")
            item.by, item.at = self.s.ref(d["by"], ("user",)), at_utc(d["at"])
            if not opens <= item.at < closes:
                raise ValueError(f"review {this.label}: decision for {d['who']} outside the round")
        this.items = sorted(scope.values(), key=lambda i: (i.role.name, i.principal.name))
        for item in this.items:
            if item.decision == "Approve" or not cfg.get("auto_apply", False):
                continue
            for a in item.assignments:
                if a.live(applied):
                    a.until, a.until_by = applied, None
                    a.until_reason = f"Access review {cfg['name']} ({this.label}): {item.decision}"
                    a.removed_by_review = this.label
        return this

    # ------------------------------------------------------------------ checks
    def _check_activations(self) -> None:
        for a in self.s.activations:
            if a.role is not None:
                scope = a.role.key
                if self.eligibility(a.who, a.role, a.at) is None:
                    raise ValueError(f"{a.seed}: {a.who.key} is not eligible for {a.role.key}")
            else:
                scope = f"group:{a.group.key}/member"
                if not [k for k in self.links_at(a.group, a.at, "member", True) if k.who is a.who]:
                    raise ValueError(f"{a.seed}: {a.who.key} is not an eligible member of {a.group.key}")
            st, _ = self.policies.settings_at(scope, a.at)
            if timedelta(minutes=a.minutes) > duration(st["activation_max"]):
                raise ValueError(f"{a.seed}: {a.minutes} minutes exceed {st['activation_max']}")
            if bool(st["approval"]) != (a.outcome != "auto"):
                raise ValueError(f"{a.seed}: approval {'required' if st['approval'] else 'not configured'}")
            if a.approver is not None:
                if a.approver.key not in st["approvers"]:
                    raise ValueError(f"{a.seed}: {a.approver.key} is not an approver")
                if a.decided is None or a.decided <= a.at:
                    raise ValueError(f"{a.seed}: the decision must follow the request")
            if "Justification" in st["activation_requires"] and not a.why:
                raise ValueError(f"{a.seed}: justification required")
            if st["auth_context"] and a.granted and not self.has_security_key(a.who, a.at):
                raise ValueError(f"{a.seed}: {a.who.key} cannot satisfy phishing-resistant MFA")

    def _check_assignments(self) -> None:
        """New PIM assignments must respect the expiry settings in force when they were made."""
        for a in self.s.assignments:
            if a.via != "pim":
                continue
            st, last = self.policies.settings_at(a.role.key, a.start)
            if last is None:
                continue  # made under the settings as found
            required = st[f"{'eligible' if a.type == 'eligible' else 'active'}_expiry_required"]
            maximum = duration(st[f"{'eligible' if a.type == 'eligible' else 'active'}_expiry"])
            if required and (a.expires is None or a.expires - a.start > maximum):
                raise ValueError(f"{a.seed}: PIM settings require an expiry within {maximum}")

    @staticmethod
    def has_security_key(p: Principal, t: datetime) -> bool:
        return any(k["registered"] <= t for k in p.fido2)
