"""`bulk.kept_heap`: memory freed in its scope is reused by the next allocations instead of being given back to the
system and faulted in again (glibc); left, the defaults are back."""

from __future__ import annotations

import resource

import pytest

from pimtrail import bulk

SIZE = 64 << 20  # larger than glibc's largest mmap threshold (32 MB): mapped apart and unmapped when freed


def _faults_of_a_second_block() -> int:
    """Page faults made allocating and filling a large block after one as large was allocated and freed."""
    block = bytearray(SIZE)  # zero-filled: every page touched
    del block
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = bytearray(SIZE)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    del block
    return after - before


@pytest.mark.skipif(bulk._glibc() is None, reason="glibc's malloc only")
def test_freed_memory_is_reused_in_the_scope_and_given_back_after():
    pages = SIZE // resource.getpagesize()
    assert _faults_of_a_second_block() > pages // 2  # the defaults: unmapped when freed, faulted in again
    with bulk.kept_heap():
        with bulk.kept_heap():  # nested: leaving the inner scope changes nothing
            pass
        assert _faults_of_a_second_block() < pages // 10
    assert bulk._held == 0
    assert _faults_of_a_second_block() > pages // 2  # the defaults again


def test_the_scope_is_left_on_an_error():
    with pytest.raises(RuntimeError):
        with bulk.kept_heap():
            raise RuntimeError("in the scope")
    assert bulk._held == 0
