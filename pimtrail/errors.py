"""Typed errors raised by domain code. Only the CLI turns them into messages and exit codes."""

from __future__ import annotations


class PimtrailError(Exception):
    """Base class: `str(err)` is the one-line message shown to the user."""

    exit_code = 1


class InputError(PimtrailError):
    """Bad input (file, field, option): the message names where and how to fix it. Exit code 2."""

    exit_code = 2

    def __init__(self, message: str, *, path: str | None = None, field: str | None = None,
                 fix: str | None = None):
        self.path, self.field, self.fix = path, field, fix
        where = path or ""
        if field:
            where = f"{where}: {field}" if where else field
        text = f"{where}: {message}" if where else message
        if fix:
            text = f"{text} ({fix})"
        super().__init__(text)


class HistoryError(PimtrailError):
    """The history database is missing, unreadable or not what we expect. Exit code 2."""

    exit_code = 2


class IntegrityError(PimtrailError):
    """The hash chain does not verify. Exit code 1: the check ran and found a problem."""

    exit_code = 1
