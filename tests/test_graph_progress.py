"""Progress while collecting: live lines on a terminal, only the summary otherwise."""

from __future__ import annotations

import io

from pimtrail.collectors.datasets import get
from pimtrail.collectors.graph.collector import Outcome
from pimtrail.collectors.graph.errors import GraphError, explain
from pimtrail.collectors.graph.fetch import FetchedPage


def outcomes() -> dict[str, Outcome]:
    users = Outcome(get("users"), [FetchedPage("", "/v1.0/users", b"{}", {"value": [{}, {}]}),
                                   FetchedPage("", "/v1.0/users?x", b"{}", {"value": [{}]})])
    error = GraphError(400, "AadPremiumLicenseRequired", "The tenant needs an AAD Premium 2 license.")
    pim = Outcome(get("role_eligibility_instances"), error=error,
                  explanation=explain(get("role_eligibility_instances"), error))
    return {"users": users, "role_eligibility_instances": pim}


def run(progress) -> None:
    for name, outcome in outcomes().items():
        progress.started(name)
        for page in outcome.pages:
            progress.page(name, len(page.body["value"]))
        progress.finished(outcome)
    progress.summary(outcomes())


def test_not_a_terminal_prints_only_the_summary():
    from pimtrail.collectors.graph.progress import Progress

    out, err = io.StringIO(), io.StringIO()
    run(Progress(out=out, err=err))  # StringIO is not a TTY
    assert err.getvalue() == ""
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["dataset", "rows", "pages", "status"]
    assert lines[1].split() == ["users", "3", "2", "ok"]
    assert lines[2].split() == ["role_eligibility_instances", "0", "0", "error", "400", "AadPremiumLicenseRequired"]
    assert "role_eligibility_instances: missing licence: Graph needs Microsoft Entra ID P2" in out.getvalue()


def test_a_terminal_sees_one_line_per_dataset_and_a_table():
    from pimtrail.collectors.graph.progress import Progress

    out, err = io.StringIO(), io.StringIO()
    progress = Progress(live=True, out=out, err=err)
    progress.started("users")
    progress.page("users", 2)
    progress.page("users", 1)
    assert progress.lines["users"].pages == 2 and progress.lines["users"].rows == 3  # as they arrive
    run(progress)
    live = err.getvalue()
    assert "users" in live and "2 pages" in live and "3 rows" in live
    table = out.getvalue()
    assert "Graph collection" in table and "AadPremiumLicenseRequired" in table and "users" in table
