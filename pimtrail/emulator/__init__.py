"""A local Graph emulator that serves an export directory with Graph behaviour (tests, benchmarks).

    with Emulator(export_dir, page_size=50) as graph:
        graph.inject("users", throttled(times=2, retry_after=1))
        ... point the collector at graph.base_url ...
        graph.requests("users")  # what the collector asked, with retries and their waits

`python -m pimtrail.emulator DIR --port 8080` runs it on its own.
"""

from .faults import (Behaviour, Fault, gateway_timeout, licence_missing, permission_missing,
                     premium_missing, slow, throttled, unavailable)
from .server import BATCH, Emulator, LoggedRequest

__all__ = ["BATCH", "Behaviour", "Emulator", "Fault", "LoggedRequest", "gateway_timeout",
           "licence_missing", "permission_missing", "premium_missing", "slow", "throttled",
           "unavailable"]
