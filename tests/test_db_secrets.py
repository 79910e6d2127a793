"""A database password never reaches what pimtrail prints: not from the URL's user part, not from its query
(libpq takes `?password=` too), not from a host that an unencoded "@" in the password made."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import make_url

from pimtrail.store.engine import scrubbed, shown_url

SECRET = "S3CRETPW"


@pytest.mark.parametrize("url, shown, secret", [
    (f"postgresql+psycopg://alice:{SECRET}@db.example:5432/hist", "postgresql+psycopg://alice:***@db.example:5432/hist",
     SECRET),
    (f"postgresql+psycopg://alice@/hist?host=/run/pg&password={SECRET}",
     "postgresql+psycopg://alice@/hist?host=%2Frun%2Fpg&password=***", SECRET),
    (f"postgresql+psycopg://alice@db.example/hist?sslpassword={SECRET}&sslmode=require",
     "postgresql+psycopg://alice@db.example/hist?sslmode=require&sslpassword=***", SECRET),
    # the password "S3C@RETPW" not encoded: the URL's password is "S3C", its host "RETPW@127.0.0.1"
    ("postgresql+psycopg://alice:S3C@RETPW@127.0.0.1:1/db", "postgresql+psycopg://alice:***@***:1/db", "RETPW"),
    ("sqlite:////var/lib/pimtrail/history.db", "sqlite:////var/lib/pimtrail/history.db", None),
])
def test_shown_url_hides_every_password(url, shown, secret):
    parsed = make_url(url)
    assert shown_url(parsed) == shown
    message = f"failed to resolve host '{parsed.host}' as user {parsed.username} with {parsed.query or parsed.password}"
    if secret is not None:
        assert secret in message and secret not in scrubbed(message, parsed)
    else:
        assert scrubbed(message, parsed) == message


def test_a_refused_connection_does_not_print_the_password(cli):
    # port 1: nothing listens, so the driver fails at once and its message is printed
    for url in (f"postgresql+psycopg://alice@127.0.0.1:1/db?password={SECRET}",
                f"postgresql+psycopg://alice:{SECRET}@127.0.0.1:1/db"):
        result = cli("snapshots", "--db", url)
        assert result.exit_code == 2 and "cannot use this database" in result.output
        assert SECRET not in result.output and "***" in result.output


def test_a_url_that_does_not_parse_does_not_quote_its_password(cli):
    result = cli("snapshots", "--db", "postgresql://bob:p@ss:word99@db.example:5432/pim")
    assert result.exit_code == 2 and "word99" not in result.output and "cannot open database" in result.output
