"""The registry of controls: one place, duplicate ids refused."""

from __future__ import annotations

import re
from typing import Callable

from .model import Control, Finding, Severity

ID_PATTERN = re.compile(r"^PIM-[A-Z]+-\d{3}$")
_REGISTRY: dict[str, Control] = {}


class RegistryError(ValueError):
    pass


def control(id: str, title: str, severity: str, *, rationale: str, remediation: str,
            datasets: tuple[str, ...], params: tuple[str, ...] = (), audit_coverage: bool = True) -> Callable:
    """Decorator: declare `evaluate(view, params) -> list[Finding]` as a control."""

    def register(evaluate: Callable[..., list[Finding]]) -> Callable[..., list[Finding]]:
        if not ID_PATTERN.match(id):
            raise RegistryError(f"control id {id!r} does not look like PIM-XXX-000")
        if id in _REGISTRY:
            raise RegistryError(f"duplicate control id {id}")
        family = evaluate.__module__.rsplit(".", 1)[-1]
        _REGISTRY[id] = Control(id, title, Severity(severity), rationale.strip(), remediation.strip(),
                                tuple(dict.fromkeys(datasets)), tuple(params), evaluate, family, audit_coverage)
        return evaluate

    return register


def all_controls() -> list[Control]:
    from . import catalogue  # noqa: F401  (imports every family module, which registers)

    return sorted(_REGISTRY.values(), key=lambda c: c.id)


def get(control_id: str) -> Control:
    all_controls()
    return _REGISTRY[control_id]
