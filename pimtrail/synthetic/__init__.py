"""A deterministic synthetic tenant of any size, written as export directories (docs/export-format.md).

    from pimtrail.synthetic import generate
    roots = generate(out, "large", days=30, churn=0.005, seed=1)   # out/2026-07-01, out/2026-07-02, ...

or, one day at a time (write, ingest, delete, advance):

    gen = Generator(PRESETS["large"], seed=1)
    gen.write(out / "day0"); gen.advance(churn=0.005)

`python -m pimtrail.synthetic --preset large --days 1 --out DIR` does the same from the shell. The same
preset, seed, start, churn, sign-in share and day give the same bytes. Used by the benchmarks (bench/) and,
through the Graph emulator, to exercise live collection at scale.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

from pimtrail import __version__
from pimtrail.collectors.datasets import users_per_request

from . import bodies as b
from . import policies as pol
from .activity import Activity, Reviews
from .presets import PRESETS, Preset, context_url, minutes
from .tenant import Tenant
from .writer import ExportWriter

__all__ = ["PRESETS", "Preset", "Generator", "generate", "DEFAULT_START", "AUDIT_OVERLAP"]

DEFAULT_START = date(2026, 7, 1)
# A daily collection asks for the audit events since the previous one, less this overlap (as
# `pimtrail collect --source graph --db` does): events arriving late are not missed, known ones are skipped.
AUDIT_OVERLAP = timedelta(hours=1)
_USERS = "users(id,userPrincipalName,displayName,userType,accountEnabled,onPremisesSyncEnabled,createdDateTime)"
_GROUPS = "groups(id,displayName,description,isAssignableToRole,securityEnabled,mailEnabled,groupTypes)"


class Generator:
    """The synthetic tenant on its current day; `write` an export, `advance` to the next day."""

    def __init__(self, preset: Preset | str, seed: int = 1, start: date = DEFAULT_START) -> None:
        self.preset = PRESETS[preset] if isinstance(preset, str) else preset
        self.seed = seed
        self.tenant = Tenant(self.preset, seed, start)
        self.activity = Activity(self.tenant)
        self.reviews = Reviews(self.activity)

    @property
    def collected_at(self):
        return self.tenant.collected_at()

    def advance(self, churn: float, days: int = 1, signin_share: float = 0.0) -> None:
        """`signin_share`: the share of enabled users whose sign-in times move each day (0: only as many
        sign in as there are churn changes; a real tenant is nearer 0.7-0.9, docs/benchmarks.md)."""
        self.tenant.step(churn, days, signin_share)

    def config_toml(self) -> str:
        """A pimtrail.toml naming the tenant's break-glass accounts."""
        upns = [self.tenant.user_name(i)[1] for i in self.tenant.break_glass]
        return ("# Configuration of a pimtrail synthetic tenant (python -m pimtrail.synthetic)\n"
                f"tenant = \"{self.tenant.tenant_id}\"\n\n[break_glass]\naccounts = {upns!r}\n".replace("'", '"'))

    def write(self, root: Path, audit_since: datetime | None = None, layout: str = "lines") -> Path:
        """Write the export of the current day into `root` (created) and return it. `audit_since`:
        hold only the audit events from then on (an incremental collection), not the whole window. `layout`:
        "lines", one element a line, or "graph", each body on one line as Graph sends it (`writer.LAYOUTS`)."""
        t, size = self.tenant, self.preset.page_size
        w = ExportWriter(Path(root), t.tenant_id, t.collected_at(),
                         f"pimtrail-synthetic {__version__} ({self.preset.name}, seed {self.seed}, day {t.day})", t.ids,
                         layout)
        w.body("organization", context_url("organization"), b.organization(t))
        w.body("subscribed_skus", context_url("subscribedSkus"), b.subscribed_skus(t))
        w.body("role_definitions", context_url("roleManagement/directory/roleDefinitions"), b.role_definitions(t))
        w.body("privileged_role_definitions",
               context_url("roleManagement/directory/roleDefinitions(id,displayName,isPrivileged)", "beta"),
               b.privileged_role_definitions(t))
        instances = b.assignment_instances(t, self.activity.activated_now())
        w.pages("role_assignment_instances",
                context_url("roleManagement/directory/roleAssignmentScheduleInstances(principal())"), instances, size)
        w.pages("role_eligibility_instances",
                context_url("roleManagement/directory/roleEligibilityScheduleInstances(principal())"),
                b.eligibility_instances(t), size)
        w.pages("role_assignments", context_url("roleManagement/directory/roleAssignments"),
                b.role_assignments(t, instances), size)
        policy_ctx = context_url("policies/roleManagementPolicyAssignments(policy(rules()))")
        w.body("role_policy_assignments", policy_ctx, pol.role_policy_assignments(t))
        w.pages("role_assignable_groups", context_url(_GROUPS), b.role_assignable_groups(t), size)
        groups = range(self.preset.groups)
        members = b.group_members(t)
        w.per_parent("group_members", ((t.group_id(g), context_url(
            "directoryObjects(id,displayName,userPrincipalName,userType)"), members[g]) for g in groups))
        del members
        w.body("pim_groups", context_url("identityGovernance/privilegedAccess/group/resources", "beta"),
               ({"id": t.group_id(g)} for g in groups if t.pim_onboarded(g)))
        w.per_parent("group_assignment_instances", ((t.group_id(g), context_url(
            "identityGovernance/privilegedAccess/group/assignmentScheduleInstances"),
            b.group_assignment_instances(t, g)) for g in groups))
        w.per_parent("group_eligibility_instances", ((t.group_id(g), context_url(
            "identityGovernance/privilegedAccess/group/eligibilityScheduleInstances"),
            b.group_eligibility_instances(t, g)) for g in groups))
        w.per_parent("group_policy_assignments", ((t.group_id(g), policy_ctx,
                                                   pol.group_policy_assignments(t, g) if t.pim_onboarded(g) else [])
                                                  for g in groups))
        self._reviews(w)
        since = minutes(audit_since) if audit_since is not None else None
        w.pages("directory_audits", context_url("auditLogs/directoryAudits"), self.activity.window(since), size)
        w.window("directory_audits", self.preset.audit_days, audit_since)
        w.pages("users", context_url(_USERS), b.users(t), size)
        w.pages("registration_details", context_url("reports/authenticationMethods/userRegistrationDetails"),
                b.registration_details(t), size)
        w.per_parent("fido2_methods", ((t.user_id(u), context_url(f"users('{t.user_id(u)}')/authentication/fido2Methods"),
                                        b.fido2_methods(t, u)) for u in t.privileged_user_slots()))
        # as the live collector asks: the privileged users and the break-glass accounts, by id, 15 a request
        asked = sorted(set(t.privileged_user_slots()) | set(t.break_glass), key=t.user_id)
        w.per_parent("sign_in_activity", ((",".join(t.user_id(u) for u in part), context_url("users(id,signInActivity)"),
                                           b.sign_in_activity(t, part))
                                          for part in users_per_request(asked)))
        w.body("ca_policies", context_url("identity/conditionalAccess/policies"), pol.ca_policies(t))
        w.body("authentication_contexts",
               context_url("identity/conditionalAccess/authenticationContextClassReferences"),
               pol.authentication_contexts())
        w.body("authentication_strengths", context_url("policies/authenticationStrengthPolicies"),
               pol.authentication_strengths())
        outside = sum(1 for i in instances if i["startDateTime"] is None)
        w.body("role_management_alerts", context_url("identityGovernance/roleManagementAlerts/alerts", "beta"),
               b.role_management_alerts(t, outside, b.global_admin_holders(t)))
        return w.close()

    def _reviews(self, w: ExportWriter) -> None:
        rv = self.reviews
        defs = range(len(rv.definitions))
        w.body("access_review_definitions", context_url("identityGovernance/accessReviews/definitions"),
               rv.definitions_body())
        w.per_parent("access_review_instances", ((rv.definition_id(n), context_url(
            f"identityGovernance/accessReviews/definitions('{rv.definition_id(n)}')/instances"), rv.instances(n))
            for n in defs))
        w.per_parent("access_review_decisions", (
            (f"{rv.definition_id(n)}/{instance}", context_url(
                f"identityGovernance/accessReviews/definitions('{rv.definition_id(n)}')/instances('{instance}')/decisions"),
             rv.decisions(n, label, instance, opens, role))
            for n in defs for label, instance, opens, role in rv.decision_parents(n)))


def generate(out: Path, preset: Preset | str = "small", *, days: int = 1, churn: float = 0.005, seed: int = 1,
             start: date = DEFAULT_START, every: int = 1, incremental_audit: bool = False,
             signin_share: float = 0.0, layout: str = "lines") -> list[Path]:
    """Write `days` exports, `every` days apart, under `out` (named by date, like the sample's), plus
    `out/pimtrail.toml`. Returns the export directories, oldest first. `incremental_audit`: every
    export after the first holds the audit events since the previous one (less AUDIT_OVERLAP).
    `signin_share`: the share of enabled users whose sign-in times move each day (`Generator.advance`).
    `layout`: how bodies are written (`Generator.write`)."""
    out = Path(out)
    gen = Generator(preset, seed, start)
    out.mkdir(parents=True, exist_ok=True)
    (out / "pimtrail.toml").write_text(gen.config_toml(), encoding="utf-8")
    roots = []
    previous = None
    for n in range(days):
        if n:
            gen.advance(churn, every, signin_share)
        since = previous - AUDIT_OVERLAP if incremental_audit and previous is not None else None
        roots.append(gen.write(out / gen.collected_at.date().isoformat(), audit_since=since, layout=layout))
        previous = gen.collected_at
    return roots
