"""Live collection through Microsoft Graph.

Importing this package is cheap: msgraph-sdk and azure-identity are imported only when a
collection runs (`collect_graph`), so `pimtrail --help` and offline commands stay fast.

    from pimtrail.collectors.graph import CredentialConfig, GraphSettings, collect_graph
    run = collect_graph(CredentialConfig.from_env("certificate"), GraphSettings(), export=Path("out"))
    run.snapshot  # a CollectedSnapshot, read back from the export the collection wrote
"""

from .client import DEFAULT_BASE_URL, HttpSettings, RetryRecord
from .credentials import METHODS, CredentialConfig, StaticTokenCredential
from .errors import GraphError, GraphRunError
from .run import GraphRun, GraphSettings, collect_graph

__all__ = ["DEFAULT_BASE_URL", "METHODS", "CredentialConfig", "GraphError", "GraphRun", "GraphRunError",
           "GraphSettings", "HttpSettings", "RetryRecord", "StaticTokenCredential", "collect_graph"]
