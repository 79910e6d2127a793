"""`bulk.kept_heap`: memory freed in its scope is reused by the next allocations instead of being given back to the
system and faulted in again (glibc); left, the defaults are back."""

from __future__ import annotations

import resource

import pytest

from pimtrail import bulk

SIZE = 64 << 20  # larger than glibc's largest mmap threshold (32 MB): mapped apart and unmapped when freed


def _faults_of_a_second_block(size: int = SIZE) -> int:
    """Page faults made allocating and filling a block after one as large was allocated and freed."""
    block = bytearray(size)  # zero-filled: every page touched
    del block
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = bytearray(size)
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
    assert _faults_of_a_second_block() > pages // 2  # mapped apart and unmapped again
    # a block under 32 MB is reused, as glibc's sliding threshold has it once large blocks were freed (the fixed
    # defaults, 128 kB, would map and unmap every one)
    assert sum(_faults_of_a_second_block(4 << 20) for _ in range(5)) < 5 * (4 << 20) // resource.getpagesize() // 10


def test_the_scope_is_left_on_an_error():
    with pytest.raises(RuntimeError):
        with bulk.kept_heap():
            raise RuntimeError("in the scope")
    assert bulk._held == 0


def test_malloc_settings_of_the_user_stand(monkeypatch):
    """Who set glibc's malloc through its environment keeps what they set: nothing is changed."""
    for name, value in (("MALLOC_ARENA_MAX", "2"), ("GLIBC_TUNABLES", "glibc.malloc.hugetlb=1")):
        with monkeypatch.context() as env:
            env.setenv(name, value)
            assert bulk._glibc() is None
