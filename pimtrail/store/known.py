"""What the history holds of a tenant's newest snapshot, for reading the next export without parsing
what did not change (`collectors.unparsed`, docs/architecture.md "Reading what did not change").

For each dataset of `SKIPPABLE`: its elements in the snapshot's order (from its listing), with their
digests and lengths (from the packs: the digests column, and the lengths at the head of the data, of
which only that much is decompressed). Offered only when that snapshot was written by this version
with every fact naming its element (`snapshot.element_links`: not for snapshots from before migration
0006), so that an element's facts are the open facts naming it.
"""

from __future__ import annotations

import itertools

from sqlalchemy import select
from sqlalchemy.engine import Connection

from pimtrail import __version__
from pimtrail.collectors.normalize import SKIPPABLE
from pimtrail.model import Known
from pimtrail.store.receipts import listing, pack_lengths, pack_start, split_digests
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
    # the elements of the pages cut into elements, in order (a page kept whole, such as one with no elements,
    # offers none: the store takes an element read unparsed only where that snapshot held it, `receipts.Plan`)
    numbers = {name: list(itertools.chain.from_iterable(  # the runs expanded by C loops
        range(first, first + count) for e in listing(conn, tenant, sha) if e.get("layout")
        for first, count in e["layout"]["runs"])) for name, sha in rows}
    numbers = {name: ns for name, ns in numbers.items() if ns}
    digests, lengths = _packed(conn, tenant, {n for ns in numbers.values() for n in ns})
    elements = {name: (list(map(digests.__getitem__, ns)), list(map(lengths.__getitem__, ns)), ns)
                for name, ns in numbers.items() if digests.keys() >= set(ns) and lengths.keys() >= set(ns)}
    return Known(newest.id, elements) if elements else None


def _packed(conn: Connection, tenant: str, wanted: set[int]) -> tuple[dict[int, bytes], dict[int, int]]:
    """Digests and lengths of the `wanted` element numbers (and of the rest of the packs holding them),
    reading each pack that holds some once."""
    digests: dict[int, bytes] = {}
    lengths: dict[int, int] = {}
    if not wanted:
        return digests, lengths
    low, high = min(wanted), max(wanted)
    packs = [first for first, count in conn.execute(select(item_pack_table.c.first_n, item_pack_table.c.count).where(
        item_pack_table.c.tenant_id == tenant, item_pack_table.c.first_n >= pack_start(conn, tenant, low),
        item_pack_table.c.first_n <= high)) if not wanted.isdisjoint(range(first, first + count))]
    for at in range(0, len(packs), 200):
        for first, packed, data in conn.execute(select(
                item_pack_table.c.first_n, item_pack_table.c.digests, item_pack_table.c.data).where(
                item_pack_table.c.tenant_id == tenant, item_pack_table.c.first_n.in_(packs[at:at + 200]))):
            digests.update(zip(itertools.count(first), split_digests(packed)))
            lengths.update(zip(itertools.count(first), pack_lengths(bytes(data))))
    return digests, lengths
