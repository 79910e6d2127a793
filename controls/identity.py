"""Break-glass accounts, phishing-resistant authentication and who may hold privileged roles."""

from __future__ import annotations

from .base import PHISHING_RESISTANT_STRENGTH, each, holding_evidence, holding_subject, passed, principal_subject
from .model import Finding, Status, Subject
from .registry import control
from .view import ACTIVE_HOLDING_DATA, GLOBAL_ADMIN, HOLDING_DATA, TIER_DATA, SnapshotView


def phishing_resistant(view: SnapshotView, user_id: str) -> tuple[bool, dict]:
    """Registered phishing-resistant method, from the registration report or the FIDO2 keys."""
    registration = view.by_id("auth_registration", "user_id").get(user_id) or {}
    keys = view.grouped("fido2_key", "user_id").get(user_id, [])
    evidence = {"methods_registered": registration.get("methods", []), "fido2_keys": len(keys)}
    return bool(registration.get("phishing_resistant") or keys), evidence


@control("PIM-BG-006", "Break-glass accounts are ready", "critical",
         rationale="Emergency accounts must work when everything else fails: enabled, cloud-only, permanently "
                   "active Global Administrator, protected by a phishing-resistant method.",
         remediation="Register 2 break-glass accounts in pimtrail.toml [break_glass]; keep them cloud-only, "
                     "enabled, permanent Global Administrator, each with a FIDO2 key stored safely.",
         datasets=ACTIVE_HOLDING_DATA + ("registration_details", "fido2_methods"),
         params=("break_glass_min", "break_glass_max"))
def break_glass_ready(view: SnapshotView, params: dict) -> list[Finding]:
    configured = view.config.break_glass.accounts
    found = view.break_glass_ids()
    low, high = int(params["break_glass_min"]), int(params["break_glass_max"])
    findings = []
    if not low <= len(found) <= high:
        findings.append(Finding(Status.FAIL, f"{len(found)} break-glass account(s) found in the tenant "
                                f"({len(configured)} configured), expected {low}–{high}",
                                evidence={"configured": configured, "found": sorted(found)}))
    standing_ga = {h.principal_id for h in view.holdings()
                   if h.role_id == GLOBAL_ADMIN and h.state == "active" and h.permanent and h.via == "direct"}
    for pid in sorted(found):
        p = view.principal(pid)
        ok_pr, evidence = phishing_resistant(view, pid)
        problems = []
        if p.get("enabled") is False:
            problems.append("disabled")
        if p.get("synced"):
            problems.append("synced from on-premises")
        if pid not in standing_ga:
            problems.append("not a permanent active Global Administrator")
        if not ok_pr:
            problems.append("no phishing-resistant method registered")
        subject = principal_subject(view, pid, "Global Administrator")
        evidence.update(enabled=p.get("enabled"), synced=p.get("synced"))
        findings.append(Finding(Status.FAIL if problems else Status.PASS,
                                f"break-glass {subject.principal_name}: " + (", ".join(problems) or "ready"),
                                subject, evidence))
    return findings


@control("PIM-AUTH-007", "Tier-0 role holders have a phishing-resistant method", "high",
         rationale="Tier-0 roles control the tenant; passwords and push MFA can be phished (CISA SCuBA MS.AAD.3.6, "
                   "NIST IA-2(1)).",
         remediation="Have the person register a FIDO2 security key, passkey or Windows Hello for Business, then "
                     "require it through an authentication strength.",
         datasets=HOLDING_DATA + ("registration_details", "fido2_methods"))
def tier0_phishing_resistant(view: SnapshotView, params: dict) -> list[Finding]:
    seen: set[str] = set()

    def check(h):
        if view.tier(h.role_id) != 0 or h.principal.get("type") != "user" or h.principal_id in seen:
            return None
        seen.add(h.principal_id)
        ok, evidence = phishing_resistant(view, h.principal_id)
        if ok:
            return None
        return Finding(Status.FAIL, f"{h.principal_name} holds {h.role.get('name')} ({h.state}) without a "
                       "phishing-resistant method", holding_subject(h), holding_evidence(h, **evidence))

    return each(view.user_holdings(), check, "every tier-0 holder has a phishing-resistant method")


def _enforcing_policies(view: SnapshotView, strong_ids: set[str]) -> list[dict]:
    return [p for p in view.facts.get("ca_policy", [])
            if p["state"] == "enabled" and p.get("auth_strength_id") in strong_ids]


def strong_strengths(view: SnapshotView) -> set[str]:
    """Authentication strengths that allow only phishing-resistant combinations."""
    weak_markers = ("password", "sms", "voice", "microsoftAuthenticatorPush", "softwareOath", "hardwareOath",
                    "temporaryAccessPass", "email", "federatedSingleFactor", "federatedMultiFactor")
    strong = {PHISHING_RESISTANT_STRENGTH}
    for s in view.facts.get("auth_strength", []):
        combos = s.get("combinations") or []
        if combos and not any(any(w in c for w in weak_markers) for c in combos):
            strong.add(s["id"])
    return strong


@control("PIM-AUTH-008", "Tier-0 activation requires a phishing-resistant authentication context", "high",
         rationale="An authentication context on activation makes PIM ask for the strongest method at the "
                   "moment privilege is granted, not only at sign-in.",
         remediation="Create an authentication context (e.g. c1), a Conditional Access policy targeting it that "
                     "requires the phishing-resistant authentication strength, and require the context in each "
                     "tier-0 role's activation settings.",
         datasets=("role_definitions", "role_policy_assignments", "ca_policies", "authentication_contexts",
                   "authentication_strengths"))
def tier0_auth_context(view: SnapshotView, params: dict) -> list[Finding]:
    strong = strong_strengths(view)
    enforced = {c for p in _enforcing_policies(view, strong) for c in p.get("auth_contexts", [])}
    available = {c["id"] for c in view.facts.get("auth_context", []) if c.get("available") is not False}
    findings = []
    for policy in view.facts.get("role_policy", []):
        role = view.roles.get(policy["role_id"]) or {"id": policy["role_id"], "name": policy.get("role_name")}
        if view.profile.tier_of(role) != 0:
            continue
        context = policy.get("auth_context")
        name = role.get("name") or policy["role_id"]
        if not context:
            problem = "activation does not require an authentication context"
        elif context not in available:
            problem = f"authentication context {context} is not available"
        elif context not in enforced:
            problem = f"no enabled Conditional Access policy enforces phishing-resistant strength for {context}"
        else:
            continue
        findings.append(Finding(Status.FAIL, f"{name}: {problem}", Subject(role=name),
                                {"auth_context": context, "enforced_contexts": sorted(enforced)}))
    return findings or [passed("every tier-0 role's activation requires an enforced phishing-resistant context",
                               enforced_contexts=sorted(enforced))]


@control("PIM-AUTH-009", "Conditional Access requires phishing-resistant MFA for privileged roles", "high",
         rationale="CISA SCuBA MS.AAD.3.6: phishing-resistant MFA shall be required for highly privileged roles.",
         remediation="Create an enabled Conditional Access policy including the tier-0 directory roles, all cloud "
                     "apps, granting access with the built-in 'Phishing-resistant MFA' authentication strength.",
         datasets=("role_definitions", "ca_policies", "authentication_strengths"))
def ca_phishing_resistant_roles(view: SnapshotView, params: dict) -> list[Finding]:
    strong = strong_strengths(view)
    covered: set[str] = set()
    for p in _enforcing_policies(view, strong):
        if "All" in p.get("include_apps", []):
            covered |= set(p.get("include_roles", [])) - set(p.get("exclude_roles", []))
    findings = []
    for role_id, role in sorted(view.roles.items(), key=lambda kv: kv[1].get("name") or ""):
        if view.profile.tier_of(role) != 0:
            continue
        if not ({role_id, role.get("template_id")} & covered):
            findings.append(Finding(Status.FAIL, f"{role.get('name')}: no enabled Conditional Access policy requires "
                                    "phishing-resistant strength for this role", Subject(role=role.get("name")),
                                    {"role_id": role_id}))
    return findings or [passed("every tier-0 role is covered by a phishing-resistant Conditional Access policy")]


@control("PIM-ACCT-010", "Privileged accounts are cloud-only members; workload identities listed", "high",
         rationale="A synced account can be taken over from on-premises; a guest is managed by another "
                   "organisation (CIS 1.1.1). Service principals with privileged roles bypass MFA and PIM.",
         remediation="Use dedicated cloud-only admin accounts; remove guests from privileged roles; review each "
                     "service principal's role and prefer narrower application permissions.",
         datasets=TIER_DATA + HOLDING_DATA)
def account_hygiene(view: SnapshotView, params: dict) -> list[Finding]:
    findings, seen = [], set()
    for h in view.user_holdings():
        if view.tier(h.role_id) not in (0, 1) or (h.principal_id, h.role_id) in seen:
            continue
        seen.add((h.principal_id, h.role_id))
        kind = h.principal.get("type")
        if kind == "service_principal":
            findings.append(Finding(Status.WARN, f"service principal {h.principal_name} holds {h.role.get('name')}",
                                    holding_subject(h), holding_evidence(h)))
        elif h.principal.get("guest"):
            findings.append(Finding(Status.FAIL, f"guest {h.principal_name} holds {h.role.get('name')}",
                                    holding_subject(h), holding_evidence(h)))
        elif h.principal.get("synced"):
            findings.append(Finding(Status.FAIL, f"{h.principal_name} holds {h.role.get('name')} with an account "
                                    "synced from on-premises", holding_subject(h), holding_evidence(h)))
    return findings or [passed("every privileged account is a cloud-only member account")]
