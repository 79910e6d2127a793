"""Jinja environment for the HTML-based outputs: package templates, autoescape on, user override."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, select_autoescape


def environment(template_dir: Path | None = None) -> Environment:
    loaders = [FileSystemLoader(str(template_dir))] if template_dir else []
    loaders.append(FileSystemLoader(str(resources.files("pimtrail.templates"))))
    env = Environment(loader=ChoiceLoader(loaders), autoescape=select_autoescape(default=True, default_for_string=True),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["dt"] = when
    env.filters["words"] = words
    return env


def words(value: str | None) -> str:
    """A Graph enum value as words, to wrap between them in a narrow column: `AppliedSuccessfully` -> `Applied
    successfully`, `pim_group` -> `pim group`."""
    if not value:
        return ""
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", value.replace("_", " "))
    return text[:1] + text[1:].lower()


def when(value: str | None, seconds: bool = False) -> str:
    """`2026-07-14T01:27:00Z` -> `2026-07-14 01:27` (UTC), breakable between date and time."""
    if not value:
        return ""
    text = value.replace("T", " ").rstrip("Z")
    return text[:19] if seconds else text[:16]


def read_asset(name: str, template_dir: Path | None = None) -> str:
    if template_dir and (template_dir / name).exists():
        return (template_dir / name).read_text(encoding="utf-8")
    return (resources.files("pimtrail.templates") / name).read_text(encoding="utf-8")
