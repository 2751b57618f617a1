"""The usable cores (linksim/cores.py): the fast LDPC decoder's default threads and the malloc arena cap."""
from linksim.cores import available_cores


def test_available_cores_with_and_without_an_affinity_mask(monkeypatch):
    import os

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {5})
    assert available_cores() == 1
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2})
    assert available_cores() == 3
    monkeypatch.delattr(os, "sched_getaffinity")  # not Linux: the CPU count, at least 1
    for count, want in ((None, 1), (1, 1), (3, 3)):
        monkeypatch.setattr(os, "cpu_count", lambda c=count: c)
        assert available_cores() == want
