"""The weight-cache key follows the code: a block's code version (linksim/codehash.py) changes with the code of
its module and of what it imports, not with comments, docstrings or modules it does not import."""
import importlib
import os
import sys
import textwrap

import pytest

from linksim.codehash import code_version, module_closure

PKG = {
    "__init__.py": "",
    "blk.py": '''
        """A user's trainable block."""
        from linksim import Block

        from . import helper


        class Learner(Block):
            role = "transmitter"

            def fit(self, data):
                from .trainer import train  # a lazy import inside a method counts too
                return train(helper.LR)
        ''',
    "helper.py": '''
        """Settings."""
        LR = 0.01  # learning rate
        ''',
    "trainer.py": '''
        def train(lr):
            """Trains."""
            return lr * 2
        ''',
    "unrelated.py": "X = 1\n",
}


@pytest.fixture
def userpkg(tmp_path, monkeypatch):
    root = tmp_path / "codehash_userpkg"
    root.mkdir()
    for name, text in PKG.items():
        (root / name).write_text(textwrap.dedent(text))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield root
    for m in [m for m in sys.modules if m.startswith("codehash_userpkg")]:
        del sys.modules[m]


def _edit(path, old, new):
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    st = os.stat(path)  # a new modification time even on a coarse clock: the parse cache is keyed by it
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))


def test_code_version_follows_the_code_it_imports(userpkg):
    cls = importlib.import_module("codehash_userpkg.blk").Learner
    closure = module_closure("codehash_userpkg.blk", ("codehash_userpkg", "linksim"))
    assert {"codehash_userpkg.blk", "codehash_userpkg.helper", "codehash_userpkg.trainer", "linksim.block"} \
        <= set(closure)
    assert "codehash_userpkg.unrelated" not in closure and "linksim.runner" not in closure
    v0 = code_version(cls)
    assert len(v0) == 20 and code_version(cls) == v0 == cls.code_version()
    _edit(userpkg / "helper.py", "# learning rate", "# the step size")  # a comment
    _edit(userpkg / "trainer.py", '"""Trains."""', '"""Trains the model."""')  # a docstring
    _edit(userpkg / "unrelated.py", "X = 1", "X = 2")  # a module it does not import
    assert code_version(cls) == v0
    _edit(userpkg / "trainer.py", "lr * 2", "lr * 3")  # training code, reached by the lazy import
    v1 = code_version(cls)
    assert v1 != v0
    _edit(userpkg / "helper.py", "LR = 0.01", "LR = 0.02")  # a setting it imports
    assert code_version(cls) not in (v0, v1)


def test_a_class_without_a_source_file_has_an_empty_version():
    cls = type("Dynamic", (), {"__module__": "no_such_module_xyz"})
    assert code_version(cls) == ""


def test_block_key_includes_the_code_version(monkeypatch):
    from linksim.api import load
    from linksim.runner import Plan, make_context

    text = textwrap.dedent("""
        name: t
        systems:
          s:
            blocks:
              src: {type: bit_source, params: {bits_per_sample: 8}}
              ch:  {type: bsc, params: {p: 0.1, in_training: true}, inputs: {bits: src.bits}}
              ber: {type: ber, inputs: {bits: src.bits, bits_hat: ch.bits}}
        """)
    cfg = load(text)
    plan = Plan(cfg, "t")
    ctx = make_context(cfg, "t", device="cpu", progress=False, cache_dir=None)
    k0 = plan.graph("s", {}, ctx).block_key("ch")
    g = plan.graph("s", {}, ctx)
    monkeypatch.setattr(type(g.blocks["src"]), "code_version", classmethod(lambda cls: "changed"))
    assert g.block_key("ch") != k0  # upstream code reaches the key through the flow key
    assert plan.graph("s", {}, ctx).block_key("ch") != k0
