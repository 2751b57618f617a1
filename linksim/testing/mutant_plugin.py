"""pytest plugin of the block-mutant check (loaded by tests/conftest.py).

- ``--block TYPE[,TYPE]`` keeps only the tests marked ``@pytest.mark.block(...)`` with one of those types.
- The environment variable ``LINKSIM_MUTANT=TYPE:KIND`` breaks the registered class of block ``TYPE`` for the
  whole session: ``zero`` (every output tensor of ``forward`` replaced by zeros), ``roll`` (rolled by one
  sample along the batch: the same values, the wrong sample) or ``sinkzero`` (every value a metric sink's
  ``compute`` returns set to 0). ``python -m linksim.testing.mutants`` runs each mutant against its tests.
"""
from __future__ import annotations

import functools
import os

import pytest

KINDS = ("zero", "roll", "sinkzero")


def _map(v, f):
    import torch

    if isinstance(v, torch.Tensor):
        return f(v)
    if isinstance(v, (list, tuple)):
        return type(v)(_map(e, f) for e in v)
    return v


def _zero(t):
    import torch

    return torch.zeros_like(t)


def _roll(t):
    import torch

    return torch.roll(t, 1, 0) if t.dim() >= 1 and t.shape[0] > 1 else t


def library_composites() -> dict:
    """The composites of the library files (scenarios/lib/*.yaml under the working folder), by name."""
    from linksim.composite import library_files, read_library

    return {name: c for name, (c, _) in read_library(library_files()).items()}


def pad_block_types(name: str, comps: dict) -> list[str]:
    """The registered block types behind a composite's output pads (through nested composites)."""
    out = []
    for ref in comps[name].outputs.values():
        inner = comps[name].blocks[ref.split(".")[0]].type
        out += pad_block_types(inner, comps) if inner in comps else [inner] if not inner.startswith("$") else []
    return sorted(set(out))


def apply(type_name: str, kind: str):
    """Patch the registered class of ``type_name`` (for a library composite: the classes of the blocks behind
    its output pads, so the composite's outputs are broken); returns a function that undoes it."""
    from linksim.registry import BLOCKS, block_class

    if type_name not in BLOCKS:
        comps = library_composites()
        if type_name in comps:
            undos = [apply(t, kind) for t in pad_block_types(type_name, comps)]
            return lambda: [u() for u in reversed(undos)]
    cls = block_class(type_name)
    if kind in ("zero", "roll"):
        attr, orig = "forward", cls.forward
        f = _zero if kind == "zero" else _roll

        @functools.wraps(orig)
        def mutated(self, *a, **kw):
            out = orig(self, *a, **kw)
            return {k: _map(v, f) for k, v in out.items()} if isinstance(out, dict) else out
    elif kind == "sinkzero":
        attr, orig = "compute", cls.compute

        @functools.wraps(orig)
        def mutated(self, *a, **kw):
            rows = orig(self, *a, **kw)
            for m in rows:
                m.value = 0.0
            return rows
    else:
        raise ValueError(f"unknown mutant kind {kind!r} (one of {KINDS})")
    had = attr in cls.__dict__
    setattr(cls, attr, mutated)

    def undo():
        if had:
            setattr(cls, attr, orig)
        else:
            delattr(cls, attr)
    return undo


def pytest_addoption(parser):
    parser.addoption("--block", default=None, help="run only tests marked block(TYPE) for these types (comma-separated)")


_UNDO: list = []


def pytest_configure(config):
    config.addinivalue_line("markers", "block(*types): tests that pin the named block types")
    spec = os.environ.get("LINKSIM_MUTANT")
    if spec:
        type_name, _, kind = spec.partition(":")
        _UNDO.append(apply(type_name, kind))


def pytest_unconfigure(config):
    while _UNDO:
        _UNDO.pop()()


def marked_types(item) -> set[str]:
    return {t for m in item.iter_markers("block") for t in m.args}


def pytest_collection_modifyitems(config, items):
    want = config.getoption("--block")
    if not want:
        return
    types = set(want.split(","))
    keep = [it for it in items if marked_types(it) & types]
    drop = [it for it in items if not marked_types(it) & types]
    if drop:
        config.hook.pytest_deselected(items=drop)
    items[:] = keep
