"""PIM's own security alerts (beta `roleManagementAlerts`), evaluated from the tenant state."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Callable

from .ids import iso
from .timeline import Timeline

GLOBAL_ADMINISTRATOR = "62e90394-69f5-4237-9190-012177145e10"  # built-in role template id


class Alerts:
    def __init__(self, tl: Timeline) -> None:
        self.tl = tl
        self.s = tl.s
        self.cfg = self.s.raw["alerts"]
        self.checks: dict[str, Callable[[datetime], int]] = {
            "NoMfaOnRoleActivationAlert": self._no_mfa,
            "RolesAssignedOutsidePimAlert": self._outside_pim,
            "StaleSignInAlert": self._stale,
            "TooManyGlobalAdminsAssignedToTenantAlert": self._too_many_global_admins,
        }

    def _scan(self, t: datetime) -> datetime:
        return t - timedelta(minutes=self.cfg["scan_lag_minutes"])

    def alerts(self, t: datetime) -> list[dict[str, Any]]:
        tenant = self.s.tenant["id"]
        out = []
        for name, check in self.checks.items():
            count = check(self._scan(t))
            changed = self._scan(self.s.snapshots[0])
            previous = None
            for snap in [x for x in self.s.snapshots if x <= t]:
                value = check(self._scan(snap))
                if value != previous:
                    changed, previous = self._scan(snap), value
            alert_id = f"DirectoryRole_{tenant}_{name}"
            out.append({
                "@odata.type": "#microsoft.graph.unifiedRoleManagementAlert",
                "id": alert_id,
                "alertDefinitionId": alert_id,
                "scopeId": "/",
                "scopeType": "DirectoryRole",
                "incidentCount": count,
                "isActive": count > 0,
                "lastModifiedDateTime": iso(changed),
                "lastScannedDateTime": iso(self._scan(t)),
            })
        return out

    # ------------------------------------------------------------------ checks (incident counts)
    def _no_mfa(self, t: datetime) -> int:
        """Roles with eligible members whose activation needs neither MFA nor an auth context."""
        roles = {a.role.key for a in self.tl.assignments_at(t, "eligible")}
        count = 0
        for key in roles:
            settings, _ = self.tl.policies.settings_at(key, t)
            if "MultiFactorAuthentication" not in settings["activation_requires"] and not settings["auth_context"]:
                count += 1
        return count

    def _outside_pim(self, t: datetime) -> int:
        return len([a for a in self.tl.assignments_at(t, "active") if a.via == "outside_pim"])

    def _stale(self, t: datetime) -> int:
        limit = timedelta(days=self.cfg["stale_sign_in_days"])
        stale = set()
        for a in self.tl.assignments_at(t, "active") + self.tl.assignments_at(t, "eligible"):
            if a.who.kind != "user":
                continue
            seen = self.tl.last_signin(a.who, t)
            if seen is None or t - seen > limit:
                stale.add(a.who.key)
        return len(stale)

    def _too_many_global_admins(self, t: datetime) -> int:
        holders = {a.who.key for a in self.tl.assignments_at(t, "active") + self.tl.assignments_at(t, "eligible")
                   if a.role.id == GLOBAL_ADMINISTRATOR}
        return len(holders) if len(holders) > self.cfg["too_many_global_admins"] else 0
