"""Reading a stored zstd frame whose header may lie. python-zstandard allocates the content size a frame's
header claims, whatever `max_output_size` says: a forged size in a tampered history would be a MemoryError in
`verify` rather than a finding. Every stored frame (element packs, listing deltas, event data, both archives)
is read here, its claim checked first."""

from __future__ import annotations

import zstandard


def bounded(data: bytes, limit: int, decompressor: zstandard.ZstdDecompressor | None = None) -> bytes:
    """One zstd frame's content (made with `decompressor`'s dictionary, if given); zstandard.ZstdError when its
    header claims more than `limit` bytes."""
    claimed = zstandard.frame_content_size(data)
    if claimed > limit:
        raise zstandard.ZstdError(f"a frame claiming {claimed} bytes, more than {limit}")
    return (decompressor or zstandard.ZstdDecompressor()).decompress(data, max_output_size=limit)
