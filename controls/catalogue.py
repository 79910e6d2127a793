"""Importing this module registers every control (one module per family)."""

from . import activity, groups, identity, policy, reviews, standing, tenant  # noqa: F401
