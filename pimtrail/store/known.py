"""What the history holds of a tenant's newest snapshot, for reading the next export without parsing
what did not change (`collectors.unparsed`, docs/architecture.md "Reading what did not change").

For each dataset of `SKIPPABLE`: its elements in the snapshot's order (from its listing), with their
digests and lengths (from the packs: the digests column, and the lengths at the head of the data, of
which only that much is decompressed). Offered only when that snapshot was written by this version
with every fact naming its element (`snapshot.element_links`: not for snapshots from before migration
0006), so that an element's facts are the open facts naming it.
"""

from __future__ import annotations

import bisect

from sqlalchemy import select
from sqlalchemy.engine import Connection

from pimtrail import __version__
from pimtrail.collectors.normalize import SKIPPABLE
from pimtrail.model import Known
from pimtrail.store.packs import pack_lengths, split_digests
from pimtrail.store.receipts import listing, pack_start
from pimtrail.store.schema import item_pack_table, receipt_list_table, snapshot_table

def read_known(conn: Connection, tenant: str) -> Known | None:
    newest = conn.execute(select(snapshot_table.c.id, snapshot_table.c.tool_version, snapshot_table.c.element_links)
                          .where(snapshot_table.c.tenant_id == tenant)
                          .order_by(snapshot_table.c.seq.desc()).limit(1)).first()
    # another version may normalise otherwise; before migration 0006 facts did not name their elements
    if newest is None or newest.tool_version != __version__ or not newest.element_links:
        return None
    rows = conn.execute(select(receipt_list_table.c.dataset, receipt_list_table.c.sha256).where(
        receipt_list_table.c.tenant_id == tenant, receipt_list_table.c.snapshot_id == newest.id,
        receipt_list_table.c.dataset.in_(sorted(SKIPPABLE)))).all()  # only these datasets' listings are read
    # the elements of the pages cut into elements, in order, as runs of numbers (a page kept whole, such as one with
    # no elements, offers none: the store takes an element read unparsed only where that snapshot held it,
    # `receipts.Plan`)
    runs = {name: [(first, count) for e in listing(conn, tenant, sha) if e.get("layout")
                   for first, count in e["layout"]["runs"]] for name, sha in rows}
    runs = {name: r for name, r in runs.items() if r}
    packs = _packed(conn, tenant, sorted(run for r in runs.values() for run in r))
    elements = {name: got for name, r in runs.items() if (got := _slices(packs, r)) is not None}
    return Known(newest.id, elements) if elements else None


def _packed(conn: Connection, tenant: str, runs: list[tuple[int, int]]) -> dict[int, tuple[list[bytes], list[int]]]:
    """{first number: (digests, lengths)} of the packs holding some number of `runs` ((first, count), sorted),
    each read once: the digests column, and the lengths at the head of its data."""
    if not runs:
        return {}
    found = conn.execute(select(item_pack_table.c.first_n, item_pack_table.c.count).where(
        item_pack_table.c.tenant_id == tenant, item_pack_table.c.first_n >= pack_start(conn, tenant, runs[0][0]),
        item_pack_table.c.first_n <= max(first + count - 1 for first, count in runs))).all()
    firsts = sorted(first for first, _ in found)
    wanted = set()
    for first, count in runs:  # the packs from the one holding a run's first number to the one holding its last
        at = max(bisect.bisect_right(firsts, first) - 1, 0)
        wanted.update(firsts[at:bisect.bisect_right(firsts, first + count - 1)])
    packs: dict[int, tuple[list[bytes], list[int]]] = {}
    wanted_list = sorted(wanted)
    for at in range(0, len(wanted_list), 200):
        for first, packed, data in conn.execute(select(
                item_pack_table.c.first_n, item_pack_table.c.digests, item_pack_table.c.data).where(
                item_pack_table.c.tenant_id == tenant, item_pack_table.c.first_n.in_(wanted_list[at:at + 200]))):
            packs[first] = (split_digests(packed), pack_lengths(bytes(data)))
    return packs


def _slices(packs: dict[int, tuple[list[bytes], list[int]]],
            runs: list[tuple[int, int]]) -> tuple[list[bytes], list[int], list[int]] | None:
    """The digests, lengths and numbers of the elements of `runs`, in order, cut out of `packs` a run at a time;
    None when some number is in no pack (or a pack's digests and lengths do not both reach it)."""
    firsts = sorted(packs)
    digests: list[bytes] = []
    lengths: list[int] = []
    numbers: list[int] = []
    for first, count in runs:
        n, end = first, first + count
        while n < end:
            at = bisect.bisect_right(firsts, n) - 1
            if at < 0:
                return None
            start = firsts[at]
            held, sizes = packs[start]
            stop = min(end, start + min(len(held), len(sizes)))
            if stop <= n:
                return None
            digests += held[n - start:stop - start]
            lengths += sizes[n - start:stop - start]
            n = stop
        numbers += range(first, end)
    return digests, lengths, numbers
