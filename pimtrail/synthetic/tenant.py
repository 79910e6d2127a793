"""The synthetic tenant's state and how it changes from one day to the next.

State is kept in flat arrays indexed by slot (a user slot, an assignment slot), never as one dict per
object: 100,000 users are a few arrays of integers. Names and ids are derived from (slot, generation)
when a body is written. `step()` applies one day of churn: a share of the users, assignments and
group memberships change, each change remembered (for the audit log) as a small tuple.

Principals are numbered 0..privileged-1: first the privileged users (user slots 0..n-1, stable:
user churn replaces only unprivileged users), then the role-holding groups, then service principals.
"""

from __future__ import annotations

import random
from array import array
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from .presets import FIRST, GLOBAL_ADMIN, LAST, UTC, Ids, Preset, Role, builtin_roles, minutes

ENABLED, GUEST, SYNCED = 1, 2, 4
METHOD_SETS = (
    (), ("microsoftAuthenticatorPush",), ("microsoftAuthenticatorPush", "softwareOneTimePasscode"),
    ("mobilePhone",), ("microsoftAuthenticatorPush", "windowsHelloForBusiness"),
    ("fido2", "microsoftAuthenticatorPush"), ("email", "mobilePhone"),
)
CORE_SHARE = 0.25  # assignments in the first quarter of the slots never churn: activations use them
COLLECT_AT = time(6, 0)


@dataclass(frozen=True)
class Change:
    """One churn event of a day, for the audit log: kind, minute it happened, slot, old and new value."""

    kind: str  # eligible / active / member / user
    at: int  # minutes since EPOCH
    slot: int
    old: tuple
    new: tuple


class Tenant:
    def __init__(self, preset: Preset, seed: int, start: date) -> None:
        self.p, self.seed, self.ids = preset, seed, Ids(seed)
        self.start = start
        self.day = 0
        self.tenant_id = self.ids.guid("tenant")
        self.domain = f"contoso{seed}.example"
        self.initial_domain = f"contoso{seed}.onmicrosoft.com"
        self.roles: list[Role] = builtin_roles()
        self.role_by_id = {r.id: r for r in self.roles}
        rng = random.Random(f"{seed}/base")
        self._users(rng)
        self._assignments(rng)
        self._groups(rng)
        self.changes: dict[int, list[Change]] = {}

    # ------------------------------------------------------------------ time
    def collected_at(self, day: int | None = None) -> datetime:
        d = self.start + timedelta(days=self.day if day is None else day)
        return datetime.combine(d, COLLECT_AT, UTC)

    def now(self) -> int:
        return minutes(self.collected_at())

    # ------------------------------------------------------------------ users
    def _users(self, rng: random.Random) -> None:
        p = self.p
        n = p.users
        base = minutes(self.collected_at(0))
        self.user_gen = array("I", bytes(4 * n))
        self.user_created = array("i", (base - rng.randrange(30 * 1440, 6 * 365 * 1440) for _ in range(n)))
        flags = bytearray(n)
        for i in range(n):
            guest = i >= p.privileged_users and rng.random() < p.guests
            flags[i] = ENABLED * (rng.random() > 0.03 or i < p.privileged_users) | GUEST * guest \
                | SYNCED * (not guest and rng.random() < 0.7)
        self.user_flags = flags
        self.user_signin = array("i", (self._first_signin(rng, i, base) for i in range(n)))
        # the last non-interactive sign-in, once a daily sign-in moved it (-1: derived from the last sign-in)
        self.user_quiet = array("i", [-1]) * n
        self.user_methods = bytearray(self._methods(rng, i) for i in range(n))
        self.user_ids = [self.ids.guid("user", i, 0) for i in range(n)]
        self.break_glass = (0, 1)
        self.user_names = [self._name(i) for i in range(n)]  # (displayName, userPrincipalName)

    @staticmethod
    def _first_signin(rng: random.Random, i: int, base: int) -> int:
        roll = rng.random()
        if roll < 0.05 and i > 1:
            return -1  # never signed in
        if roll < 0.12 and i > 1:
            return base - rng.randrange(91 * 1440, 400 * 1440)  # stale
        return base - rng.randrange(60, 30 * 1440)

    def _methods(self, rng: random.Random, i: int) -> int:
        if i < self.p.privileged_users:
            return rng.choice((2, 4, 5, 5, 1))
        return rng.choice((0, 1, 1, 2, 3, 6, 1, 2))

    def user_id(self, i: int) -> str:
        return self.user_ids[i]

    def user_name(self, i: int) -> tuple[str, str]:
        """(displayName, userPrincipalName) of user slot `i`."""
        return self.user_names[i]

    def _name(self, i: int) -> tuple[str, str]:
        gen = self.user_gen[i]
        h = self.ids.number("name", i, gen)
        first, last = FIRST[h % len(FIRST)], LAST[(h >> 8) % len(LAST)]
        if i in self.break_glass:
            return f"Break Glass {i + 1:02d}", f"breakglass{i + 1:02d}@{self.initial_domain}"
        if self.user_flags[i] & GUEST:
            return f"{first} {last} (Guest)", f"{first.lower()}.{last.lower()}{i}_partner.example#EXT#@{self.initial_domain}"
        suffix = f"{i}" if gen == 0 else f"{i}g{gen}"
        return f"{first} {last}", f"{first.lower()}.{last.lower()}{suffix}@{self.domain}"

    # ------------------------------------------------------------------ principals
    def principal(self, p: int) -> tuple[str, str, str, str | None]:
        """(kind, id, displayName, upn or appId) of privileged principal `p`."""
        pu, rg = self.p.privileged_users, self.p.role_groups
        if p < pu:
            name, upn = self.user_name(p)
            return "user", self.user_id(p), name, upn
        if p < pu + rg:
            g = p - pu
            return "group", self.group_id(g), self.group_name(g), None
        s = p - pu - rg
        return "servicePrincipal", self.ids.guid("sp", s), f"Automation App {s:04d}", self.ids.guid("app", s)

    def group_id(self, g: int) -> str:
        return self.ids.guid("group", g)

    def group_name(self, g: int) -> str:
        return f"PRIV-{'Role' if g < self.p.role_groups else 'Access'}-Group-{g:04d}"

    def pim_onboarded(self, g: int) -> bool:
        return g % 3 == 0

    # ------------------------------------------------------------------ assignments
    def _pick_roles(self, rng: random.Random, count: int, weights: list[float]) -> list[int]:
        chosen: list[int] = []
        while len(chosen) < min(count, len(self.roles)):
            r = rng.choices(range(len(self.roles)), weights)[0]
            if r not in chosen:
                chosen.append(r)
        return chosen

    def _assignments(self, rng: random.Random) -> None:
        p = self.p
        weights = [r.weight for r in self.roles]
        self.elig_p, self.elig_r = array("i"), array("i")
        self.elig_start = array("i")
        pairs: set[tuple[int, int]] = set()
        now = minutes(self.collected_at(0))
        holders = [q for q in range(p.privileged) if q not in self.break_glass]  # break-glass: standing GA only
        for n, principal in enumerate(holders):
            count = p.eligible // len(holders) + (n < p.eligible % len(holders))
            for r in self._pick_roles(rng, count, weights):
                self.elig_p.append(principal)
                self.elig_r.append(r)
                self.elig_start.append(now - rng.randrange(1440, 700 * 1440))
                pairs.add((principal, r))
        self.elig_pairs = pairs
        ga = next(r.index for r in self.roles if r.id == GLOBAL_ADMIN)
        # active: break-glass Global Administrators first, a few more standing GAs, then the rest
        self.act_p, self.act_r, self.act_kind, self.act_start = array("i"), array("i"), bytearray(), array("i")
        active: set[tuple[int, int]] = set()
        sp_first = p.privileged - p.service_principals
        for principal in (*self.break_glass, 2, 3, 4):
            self._add_active(principal, ga, 0, now - rng.randrange(100 * 1440, 900 * 1440), active)
        while len(self.act_p) < p.active:
            roll = rng.random()
            if roll < 0.08:  # service principals hold standing roles
                principal = rng.randrange(sp_first, p.privileged)
            else:
                principal = rng.randrange(p.privileged)
            r = rng.choices(range(len(self.roles)), weights)[0]
            if r == ga or (principal, r) in active or principal in self.break_glass:
                continue
            kind = 2 if rng.random() < 0.03 else (0 if rng.random() < 0.55 else 1)  # 0 permanent, 1 bound, 2 outside PIM
            self._add_active(principal, r, kind, now - rng.randrange(1440, 500 * 1440), active)
        self.act_pairs = active

    def _add_active(self, principal: int, role: int, kind: int, start: int, pairs: set) -> None:
        self.act_p.append(principal)
        self.act_r.append(role)
        self.act_kind.append(kind)
        self.act_start.append(start)
        pairs.add((principal, role))

    # ------------------------------------------------------------------ groups
    def _groups(self, rng: random.Random) -> None:
        p = self.p
        pu = p.privileged_users
        self.mem_g, self.mem_u = array("i"), array("i")
        seen: set[tuple[int, int]] = set()
        for g in range(p.groups):
            for _ in range(max(1, round(rng.gauss(p.members_per_group, p.members_per_group / 3)))):
                u = rng.randrange(2, pu)
                if (g, u) not in seen:
                    seen.add((g, u))
                    self.mem_g.append(g)
                    self.mem_u.append(u)
        self.mem_pairs = seen
        # PIM for Groups: per onboarded group a few eligible members and one or two active owners
        self.pim_elig: list[tuple[int, int, str]] = []  # (group, user, access)
        self.pim_owner: list[tuple[int, int]] = []
        for g in range(p.groups):
            if not self.pim_onboarded(g):
                continue
            for u in sorted({rng.randrange(2, pu) for _ in range(rng.randint(2, 6))}):
                self.pim_elig.append((g, u, "member"))
            for u in sorted({rng.randrange(2, pu) for _ in range(rng.randint(1, 2))}):
                self.pim_owner.append((g, u))

    # ------------------------------------------------------------------ churn
    def step(self, churn: float, days: int = 1, signin_share: float = 0.0) -> None:
        """Advance `days` days; each day a `churn` share of users, assignments and memberships change, and
        the sign-in times of a `signin_share` of the enabled users move (`_daily_sign_ins`)."""
        for _ in range(days):
            self.day += 1
            rng = random.Random(f"{self.seed}/day/{self.day}")
            day_start = minutes(self.collected_at(self.day - 1))
            changes: list[Change] = []

            def when() -> int:
                return day_start + rng.randrange(1, 1439)

            self._churn_eligible(rng, round(churn * len(self.elig_p)), when, changes)
            self._churn_active(rng, round(churn * len(self.act_p)), when, changes)
            self._churn_members(rng, round(churn * len(self.mem_g)), when, changes)
            self._churn_users(rng, round(churn * self.p.users), when, changes)
            if signin_share:
                self._daily_sign_ins(signin_share, day_start)
            changes.sort(key=lambda c: (c.at, c.kind, c.slot))
            self.changes[self.day - 1] = changes  # they happened during the day before collection

    def _churn_eligible(self, rng, count: int, when, changes: list[Change]) -> None:
        n = len(self.elig_p)
        core = int(n * CORE_SHARE)
        weights = [r.weight for r in self.roles]
        for _ in range(count if n > core else 0):
            slot = rng.randrange(core, n)
            old = (self.elig_p[slot], self.elig_r[slot])
            new = (rng.randrange(2, self.p.privileged), rng.choices(range(len(self.roles)), weights)[0])
            if new in self.elig_pairs:
                continue
            at = when()
            self.elig_pairs.discard(old)
            self.elig_pairs.add(new)
            self.elig_p[slot], self.elig_r[slot], self.elig_start[slot] = new[0], new[1], at
            changes.append(Change("eligible", at, slot, old, new))

    def _churn_active(self, rng, count: int, when, changes: list[Change]) -> None:
        n = len(self.act_p)
        first = 5  # the break-glass and standing Global Administrators stay
        weights = [r.weight for r in self.roles]
        ga = next(r.index for r in self.roles if r.id == GLOBAL_ADMIN)
        for _ in range(count if n > first else 0):
            slot = rng.randrange(first, n)
            old = (self.act_p[slot], self.act_r[slot])
            new = (rng.randrange(2, self.p.privileged), rng.choices(range(len(self.roles)), weights)[0])
            if new in self.act_pairs or new[1] == ga:
                continue
            at = when()
            self.act_pairs.discard(old)
            self.act_pairs.add(new)
            self.act_p[slot], self.act_r[slot], self.act_start[slot] = new[0], new[1], at
            self.act_kind[slot] = 0 if rng.random() < 0.5 else 1
            changes.append(Change("active", at, slot, old, new))

    def _churn_members(self, rng, count: int, when, changes: list[Change]) -> None:
        n = len(self.mem_g)
        for _ in range(count if n else 0):
            slot = rng.randrange(n)
            old = (self.mem_g[slot], self.mem_u[slot])
            new = (old[0], rng.randrange(2, self.p.privileged_users))
            if new in self.mem_pairs:
                continue
            self.mem_pairs.discard(old)
            self.mem_pairs.add(new)
            self.mem_u[slot] = new[1]
            changes.append(Change("member", when(), slot, old, new))

    def _churn_users(self, rng, count: int, when, changes: list[Change]) -> None:
        pu, n = self.p.privileged_users, self.p.users
        for _ in range(count if n > pu else 0):
            i = rng.randrange(pu, n)
            at = when()
            if rng.random() < 0.6:  # a leaver replaced by a joiner: a new object id
                self.user_gen[i] += 1
                self.user_ids[i] = self.ids.guid("user", i, self.user_gen[i])
                self.user_created[i] = at
                self.user_signin[i] = -1
                self.user_quiet[i] = -1
                self.user_methods[i] = self._methods(rng, i)
                self.user_flags[i] = ENABLED | (self.user_flags[i] & SYNCED)
                self.user_names[i] = self._name(i)
            else:  # disabled (or enabled again)
                self.user_flags[i] ^= ENABLED
            changes.append(Change("user", at, i, (), ()))
        for _ in range(count):  # and as many sign-ins as there are changes
            i = rng.randrange(n)
            if self.user_flags[i] & ENABLED and self.user_signin[i] < minutes(self.collected_at()) - 60:
                self.user_signin[i] = when()

    def _daily_sign_ins(self, share: float, day_start: int) -> None:
        """Real tenants' sign-in activity moves every day for most users: token refreshes move the last
        non-interactive sign-in of everyone who uses the tenant, and many sign in interactively as well.
        The enabled users whose `Ids.chance` is below `share` (the same users every day, a joiner drawn
        anew; not the break-glass accounts, meant to stay unused) get a non-interactive sign-in during the
        day before collection, and half of the days an interactive one. Its own random stream: the day's
        churn is the same with and without it."""
        rng = random.Random(f"{self.seed}/signins/{self.day}")
        chance, flags, gens = self.ids.chance, self.user_flags, self.user_gen
        signin, quiet = self.user_signin, self.user_quiet
        for i in range(self.p.users):
            if not flags[i] & ENABLED or i in self.break_glass or chance("daily-sign-in", i, gens[i]) >= share:
                continue
            if signin[i] < 0 or rng.random() < 0.5:
                signin[i] = day_start + rng.randrange(1, 1439)
            quiet[i] = max(signin[i], day_start + rng.randrange(1, 1439))

    # ------------------------------------------------------------------ derived sets
    def role_group_slots(self) -> set[int]:
        """Group slots that hold a directory role (eligible or active) right now."""
        pu, rg = self.p.privileged_users, self.p.role_groups
        return {p - pu for p in (*self.elig_p, *self.act_p) if pu <= p < pu + rg}

    def privileged_user_slots(self) -> list[int]:
        """Users who hold or may activate a role, directly or through a role-holding group: the
        users whose FIDO2 keys the live collector reads."""
        pu = self.p.privileged_users
        users = {p for p in (*self.elig_p, *self.act_p) if p < pu}
        groups = self.role_group_slots()
        users.update(u for g, u in zip(self.mem_g, self.mem_u) if g in groups)
        users.update(u for g, u, _ in self.pim_elig if g in groups)
        users.update(u for g, u in self.pim_owner if g in groups)
        return sorted(users)
