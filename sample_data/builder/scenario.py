"""Read scenario.toml into plain objects, resolve keys to ids and check references.

This module knows the scenario's vocabulary, not its story: every value it returns comes
from the file.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from .ids import UTC, Ids, at_utc


@dataclass
class Principal:
    key: str
    kind: str  # "user" | "group" | "servicePrincipal"
    id: str
    name: str
    created: datetime
    upn: str | None = None
    app_id: str | None = None
    guest: bool = False
    synced: bool = False
    disabled: datetime | None = None
    signin: str = "none"
    signin_until: datetime | None = None
    signins: list[datetime] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)
    fido2: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Role:
    key: str
    id: str
    name: str
    description: str
    privileged: bool
    high_risk: bool
    actions: list[str]


@dataclass
class Assignment:
    """One directory role assignment (active or eligible) over its whole life."""

    seed: str
    who: Principal
    role: Role
    type: str  # "active" | "eligible"
    via: str  # "pim" | "outside_pim"
    start: datetime
    by: Principal | None
    reason: str
    expires: datetime | None = None
    until: datetime | None = None
    until_by: Principal | None = None
    until_reason: str = ""
    removed_by_review: str = ""  # round label when an access review removed it

    def live(self, t: datetime) -> bool:
        if t < self.start:
            return False
        if self.until is not None and t >= self.until:
            return False
        return self.expires is None or t < self.expires


@dataclass
class GroupLink:
    """A member, eligible member or owner of a group, over time."""

    group: Principal
    who: Principal
    access: str  # "member" | "owner"
    eligible: bool
    start: datetime
    expires: datetime | None = None
    until: datetime | None = None
    by: Principal | None = None
    reason: str = ""

    def live(self, t: datetime) -> bool:
        if t < self.start or (self.until is not None and t >= self.until):
            return False
        return self.expires is None or t < self.expires


@dataclass
class Activation:
    seed: str
    who: Principal
    at: datetime
    minutes: int
    why: str
    role: Role | None = None
    group: Principal | None = None
    approver: Principal | None = None
    decided: datetime | None = None
    outcome: str = "auto"  # "auto" | "approved" | "denied"
    decision_note: str = ""
    ip: str = ""
    approver_ip: str = ""

    @property
    def granted(self) -> bool:
        return self.outcome != "denied"

    @property
    def start(self) -> datetime:
        if self.decided is not None:  # PIM completes the activation seconds after the approval
            return self.decided + timedelta(seconds=15)
        return self.at + timedelta(seconds=20)

    @property
    def end(self) -> datetime:
        return self.start + timedelta(minutes=self.minutes)

    def covers(self, t: datetime) -> bool:
        return self.granted and self.start <= t < self.end


@dataclass
class Scenario:
    raw: dict[str, Any]
    ids: Ids
    tenant: dict[str, Any]
    collection: dict[str, Any]
    principals: dict[str, Principal]
    roles: dict[str, Role]
    assignments: list[Assignment]
    group_links: list[GroupLink]
    activations: list[Activation]
    snapshots: list[datetime]

    def people(self) -> list[Principal]:
        return [p for p in self.principals.values() if p.kind == "user"]

    def groups(self) -> list[Principal]:
        return [p for p in self.principals.values() if p.kind == "group"]

    def ref(self, key: str, kinds: tuple[str, ...] = ("user", "group", "servicePrincipal")) -> Principal:
        principal = self.principals.get(key)
        if principal is None or principal.kind not in kinds:
            raise ValueError(f"scenario refers to unknown {'/'.join(kinds)} {key!r}")
        return principal

    def role_by_key(self, key: str) -> Role:
        if key not in self.roles:
            raise ValueError(f"scenario refers to unknown role {key!r}")
        return self.roles[key]


def _opt_time(value: Any) -> datetime | None:
    return None if value is None else at_utc(value)


def _person(ids: Ids, item: dict[str, Any]) -> Principal:
    return Principal(
        key=item["key"], kind="user", id=ids.guid("user", item["key"]), name=item["name"],
        created=at_utc(item["created"]), upn=item["upn"], guest=item.get("guest", False),
        synced=item.get("synced", False), disabled=_opt_time(item.get("disabled")),
        signin=item.get("signin", "none"), signin_until=_opt_time(item.get("signin_until")),
        signins=[at_utc(s) for s in item.get("signins", [])], methods=list(item.get("methods", [])),
        fido2=[dict(k, registered=at_utc(k["registered"])) for k in item.get("fido2", [])],
    )


def load(path: Path) -> Scenario:
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    tenant = raw["tenant"]
    ids = Ids(tenant["id"])
    principals: dict[str, Principal] = {}

    def add(p: Principal) -> None:
        if p.key in principals:
            raise ValueError(f"duplicate key {p.key!r} in scenario")
        principals[p.key] = p

    for item in raw.get("person", []) + raw.get("everyone_else", {}).get("people", []):
        add(_person(ids, item))
    for item in raw.get("service_principal", []):
        add(Principal(key=item["key"], kind="servicePrincipal", id=ids.guid("sp", item["key"]),
                      name=item["name"], created=at_utc(item["created"]), app_id=item["app_id"]))
    for item in raw.get("group", []):
        add(Principal(key=item["key"], kind="group", id=ids.guid("group", item["key"]),
                      name=item["name"], created=at_utc(item["created"])))

    roles = {
        key: Role(key=key, id=r["template_id"], name=r["name"], description=r["description"],
                  privileged=r.get("privileged", False), high_risk=r.get("high_risk", False),
                  actions=list(r.get("actions", [])))
        for key, r in raw["roles"].items()
    }
    scenario = Scenario(raw=raw, ids=ids, tenant=tenant, collection=raw["collection"],
                        principals=principals, roles=roles, assignments=[], group_links=[],
                        activations=[], snapshots=_snapshots(raw["collection"]))
    _load_assignments(scenario)
    _load_groups(scenario)
    _load_activations(scenario)
    return scenario


def _snapshots(collection: dict[str, Any]) -> list[datetime]:
    first, last = at_utc(collection["first"]), at_utc(collection["last"])
    step = timedelta(days=collection["every_days"])
    out, t = [], first
    while t <= last:
        out.append(t)
        t += step
    return out


def _load_assignments(s: Scenario) -> None:
    for n, item in enumerate(s.raw.get("assignment", [])):
        if item["type"] not in ("active", "eligible"):
            raise ValueError(f"assignment {n}: type must be active or eligible")
        via = item.get("via", "pim")
        if via not in ("pim", "outside_pim") or (via == "outside_pim" and item["type"] != "active"):
            raise ValueError(f"assignment {n}: bad via {via!r}")
        s.assignments.append(Assignment(
            seed=f"assignment/{n}/{item['who']}/{item['role']}/{item['type']}",
            who=s.ref(item["who"]), role=s.role_by_key(item["role"]), type=item["type"], via=via,
            start=at_utc(item["from"]), by=s.ref(item["by"], ("user",)) if "by" in item else None,
            reason=item.get("reason", ""), expires=_opt_time(item.get("expires")),
            until=_opt_time(item.get("until")),
            until_by=s.ref(item["until_by"], ("user",)) if "until_by" in item else None,
            until_reason=item.get("until_reason", ""),
        ))


def _load_groups(s: Scenario) -> None:
    for item in s.raw.get("group", []):
        group = s.principals[item["key"]]
        for kind, access, eligible in (("members", "member", False), ("owners", "owner", False),
                                       ("eligible_members", "member", True)):
            for link in item.get(kind, []):
                s.group_links.append(GroupLink(
                    group=group, who=s.ref(link["who"], ("user",)), access=access, eligible=eligible,
                    start=at_utc(link["from"]), expires=_opt_time(link.get("expires")),
                    until=_opt_time(link.get("until")),
                    by=s.ref(link["by"], ("user",)) if "by" in link else None,
                    reason=link.get("reason", "")))


def _load_activations(s: Scenario) -> None:
    for n, item in enumerate(s.raw.get("activations", {}).get("log", [])):
        if ("role" in item) == ("group" in item):
            raise ValueError(f"activation {n}: give exactly one of role or group")
        outcome = item.get("outcome", "auto")
        if outcome not in ("auto", "approved", "denied"):
            raise ValueError(f"activation {n}: bad outcome {outcome!r}")
        if (outcome == "auto") != ("approver" not in item):
            raise ValueError(f"activation {n}: approver and outcome go together")
        s.activations.append(Activation(
            seed=f"activation/{n}/{item['who']}/{item['at']}", who=s.ref(item["who"], ("user",)),
            at=at_utc(item["at"]), minutes=item["minutes"], why=item["why"],
            role=s.role_by_key(item["role"]) if "role" in item else None,
            group=s.ref(item["group"], ("group",)) if "group" in item else None,
            approver=s.ref(item["approver"], ("user",)) if "approver" in item else None,
            decided=_opt_time(item.get("decided")), outcome=outcome,
            decision_note=item.get("decision_note", ""),
            ip=item.get("ip", s.tenant["office_ip"]),
            approver_ip=item.get("approver_ip", item.get("ip", s.tenant["office_ip"])
                                 if item.get("approver") == item["who"] else s.tenant["office_ip"]),
        ))
    s.activations.sort(key=lambda a: a.at)


def date_at(day: date, hhmm: str) -> datetime:
    hours, minutes = (int(x) for x in hhmm.split(":"))
    return datetime(day.year, day.month, day.day, hours, minutes, tzinfo=UTC)
