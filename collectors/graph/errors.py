"""Graph failures, and what they mean for the person running pimtrail.

A dataset that Graph refuses (licence, permission, throttled past the retries, timed out) is
recorded in the snapshot's coverage with Graph's status and code and a plain explanation; the
other datasets are kept. Failures that make the whole run meaningless (sign-in refused, Graph
unreachable) stop the collection instead: `GraphRunError`.
"""

from __future__ import annotations

from dataclasses import dataclass

from pimtrail.collectors.datasets import Dataset
from pimtrail.errors import PimtrailError

LICENCE_P2 = "AadPremiumLicenseRequired"
NON_PREMIUM = "Authentication_RequestFromNonPremiumTenantOrB2CTenant"
DENIED = "Authorization_RequestDenied"
LICENCE_NAMES = {"P1": "Microsoft Entra ID P1 (or P2)", "P2": "Microsoft Entra ID P2 (or Governance)"}


class GraphRunError(PimtrailError):
    """The collection cannot go on (sign-in failed, Graph unreachable). Nothing is stored."""

    exit_code = 1


@dataclass
class GraphError(Exception):
    """One request failed for good (after the retries the SDK makes)."""

    status: int | None  # None: no HTTP answer (timeout, connection)
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.status or '-'} {self.code}: {self.message}"

    @property
    def vanished(self) -> bool:
        """A per-parent object deleted between two reads: skip it, it is not a failure."""
        return self.status == 404

    @property
    def fatal(self) -> bool:
        """The token is refused: every other request would fail the same way."""
        return self.status == 401


def explain(dataset: Dataset, error: GraphError) -> str:
    """A plain sentence naming what is missing (licence or permission), then Graph's words."""
    if error.code == LICENCE_P2:
        what = (f"missing licence: Graph needs {LICENCE_NAMES['P2']} in the tenant to read "
                f"{dataset.name} (PIM data)")
    elif error.code == NON_PREMIUM:
        what = (f"missing licence: Graph needs {LICENCE_NAMES.get(dataset.licence, LICENCE_NAMES['P1'])} "
                f"in the tenant to read {dataset.name}")
    elif error.code == DENIED or error.status == 403:
        what = (f"missing permission: grant the application permission{'s' if dataset.also_needs else ''} "
                f"{' and '.join(dataset.permissions)} "
                f"(with admin consent) to read {dataset.name}")
    elif error.code == "ParentUnavailable":
        return error.message
    elif error.status == 429:
        what = f"still throttled by Graph after the retries: {dataset.name} not read; run again later"
    elif error.status is None:
        what = f"no answer from Graph for {dataset.name}: {error.code}"
    elif 200 <= error.status < 300:
        what = f"Graph's answer for {dataset.name} could not be read"
    else:
        what = f"Graph refused to return {dataset.name}"
    graph_words = f" (Graph: {error.status or '-'} {error.code}: {error.message})" if error.message else ""
    return f"{what}{graph_words}"
