"""Blocks from outside the package: ``type: "module:Class"``, ``linksim.blocks`` entry points, and the one-line
errors (exit 2, naming the YAML key) when a plugin cannot be loaded."""
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import linksim
from linksim.cli import main
from linksim.errors import UserError
from linksim.registry import refresh_plugins
from conftest import link_blocks

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "linksim_phasenoise"

# a user's block, written only against the public contract (README "Write your own block")
FLIP = '''
import pydantic
import torch
from linksim import Block, Params, Port, Spec, expect


class Flip(Block):
    """Inverts every bit with index % period == 0."""

    role = "channel"
    inputs = {"bits": Port(("bits",))}
    outputs = {"bits": "bits, some inverted"}

    class Params(Params):
        period: pydantic.PositiveInt = 1

    def setup(self, specs):
        expect(specs["bits"], "bits", "bits")
        return {"bits": specs["bits"]}

    def forward(self, bits):
        out = bits.clone()
        out[:, :: self.p.period] = 1 - out[:, :: self.p.period]
        return {"bits": out}
'''


def scenario(flip_type: str, period: int = 1) -> dict:
    """bit source -> user's flip block -> BER against the source: BER = 1 / period."""
    return {"name": "plug", "systems": {"s": {"samples": 64, "blocks": {
        "src": {"type": "bit_source", "params": {"bits_per_sample": 96}},
        "flip": {"type": flip_type, "params": {"period": period}, "inputs": {"bits": "src.bits"}},
        "ber": {"type": "ber", "inputs": {"bits": "src.bits", "bits_hat": "flip.bits"}}}}}}


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """A folder on sys.path (as PYTHONPATH would put it) holding the user's modules."""
    d = tmp_path / "userblocks"
    d.mkdir()
    monkeypatch.syspath_prepend(str(d))

    def put(name: str, text: str):
        (d / f"{name}.py").write_text(textwrap.dedent(text))
        sys.modules.pop(name, None)
        return name

    yield put


def ber(df) -> float:
    return float(df.loc[df.metric == "ber", "value"].iloc[0])


def test_module_class_block_runs_and_its_parameters_act(user_module):
    mod = user_module("flipblocks", FLIP)
    assert ber(linksim.run(scenario(f"{mod}:Flip", period=1))) == 1.0
    assert ber(linksim.run(scenario(f"{mod}:Flip", period=4))) == 0.25


def test_module_class_block_through_the_cli(user_module, tmp_path, capsys):
    import yaml

    mod = user_module("flipblocks", FLIP)
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(scenario(f"{mod}:Flip", period=2)))
    assert main(["validate", str(p)]) == 0
    assert main(["run", str(p), "--out", str(tmp_path / "o"), "--no-plots"]) == 0
    assert ",ber,0.5," in (tmp_path / "o" / "results.csv").read_text()


BAD = {
    "missing module": (None, "nosuchmodule_xyz:Flip", "no module named 'nosuchmodule_xyz'"),
    "missing submodule": (None, "linksim.nosuch:Flip", "no module named 'linksim.nosuch'"),
    "import error inside": ("import torch\nimport nosuchdep_abc\n", "{m}:Flip",
                            "importing '{m}' failed: ModuleNotFoundError: No module named 'nosuchdep_abc'"),
    "exception at import": ("raise RuntimeError('plugin broke')\n", "{m}:Flip",
                            "importing '{m}' failed: RuntimeError: plugin broke"),
    "syntax error": ("def f(:\n", "{m}:Flip", "importing '{m}' failed: SyntaxError"),
    "no such class": (FLIP, "{m}:Flipp", "module '{m}' has no 'Flipp' (did you mean Flip?)"),
    "not a Block": ("class Flip:\n    pass\n", "{m}:Flip", "is a class, not a subclass of linksim.Block"),
    "a function": ("def Flip():\n    pass\n", "{m}:Flip", "is a function, not a subclass of linksim.Block"),
    "no setup": ("from linksim import Block\nclass Flip(Block):\n    pass\n", "{m}:Flip",
                 "does not define setup(specs)"),
    "bad Params": ("from linksim import Block\nclass Flip(Block):\n    Params = dict\n"
                   "    def setup(self, specs):\n        return {}\n", "{m}:Flip", "Params that is not a pydantic"),
    "malformed": (None, "flip:blocks:Flip", "is not 'package.module:Class'"),
}


@pytest.mark.parametrize("case", list(BAD))
@pytest.mark.parametrize("cmd", ["validate", "run"])
def test_unloadable_plugin_exits_2_with_one_line_naming_the_key(case, cmd, user_module, tmp_path, capsys):
    import yaml

    source, target, expected = BAD[case]
    m = user_module(f"bad_{case.replace(' ', '_')}", source) if source else "unused"
    target, expected = target.format(m=m), expected.format(m=m)
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(scenario(target)))
    args = [cmd, str(p)] + (["--out", str(tmp_path / "o")] if cmd == "run" else [])
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert f"{p}: systems.s.blocks.flip.type: block type '{target}'" in err, err
    assert expected in err, err
    assert not (tmp_path / "o").exists()  # nothing ran


def test_unknown_block_in_a_subprocess_has_no_traceback(tmp_path):
    import yaml

    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(scenario("nosuchmodule_xyz:Flip")))
    r = subprocess.run([sys.executable, "-m", "linksim.cli", "run", str(p), "--out", str(tmp_path / "o")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert "systems.s.blocks.flip.type" in r.stderr


# ------------------------------------------------------------------------------------- entry points
def fake_dist(root: Path, name: str, entry_points: dict[str, str]) -> None:
    """An installed distribution as importlib.metadata finds it: a .dist-info folder on sys.path."""
    info = root / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    lines = "".join(f"{k} = {v}\n" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[linksim.blocks]\n{lines}")


@pytest.fixture
def site(tmp_path, monkeypatch):
    d = tmp_path / "site"
    d.mkdir()
    monkeypatch.syspath_prepend(str(d))
    refresh_plugins()
    yield d
    refresh_plugins()


def test_entry_point_names_clashes_and_listing(site, user_module, capsys):
    mod = user_module("flipblocks", FLIP)
    fake_dist(site, "flipdist", {"flip": f"{mod}:Flip", "awgn": f"{mod}:Flip", "twice": f"{mod}:Flip",
                                 "broken": "nosuchmodule_xyz:Flip"})
    fake_dist(site, "otherdist", {"twice": f"{mod}:Other"})
    refresh_plugins()
    # an entry-point name works like a built-in one
    assert ber(linksim.run(scenario("flip", period=2))) == 0.5
    # built-in names win over a plugin of the same name
    from linksim.channels.awgn import AWGNChannel
    from linksim.registry import block_class

    assert block_class("awgn") is AWGNChannel
    # two packages giving one name different targets: an error naming both
    with pytest.raises(UserError, match="'twice' is defined by package 'flipdist' 1.0 .* and by package 'otherdist'"):
        linksim.validate(scenario("twice"))
    with pytest.raises(UserError, match=r"<dict>: systems.s.blocks.flip.type: block type 'broken' \(entry point "
                                        r"of package 'flipdist' 1.0\): no module named 'nosuchmodule_xyz'"):
        linksim.validate(scenario("broken"))
    assert main(["blocks"]) == 0
    out = capsys.readouterr().out
    plugins = out[out.index("== plugins"):]
    assert f"flip: Inverts every bit with index % period == 0.\n    from: package 'flipdist' 1.0, {mod}:Flip" in plugins
    assert "    - period (int, 1)" in plugins
    assert "awgn: IGNORED, a built-in block has this name" in plugins
    assert "twice: UNUSABLE" in plugins and "broken: CANNOT LOAD" in plugins


def test_example_package_installs_with_pip_and_runs_by_name_and_by_module_class(tmp_path, monkeypatch):
    src = tmp_path / "src"
    shutil.copytree(EXAMPLE, src, ignore=shutil.ignore_patterns("build", "*.egg-info"))  # builds leave files
    target = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
                        "--quiet", "--target", str(target), str(src)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    monkeypatch.syspath_prepend(str(target))
    refresh_plugins()
    try:
        small = {"data.train_samples": 1000, "systems.*.samples": 500, "sweep.snr_db": [14, 22],
                 "systems.learned16.blocks.tx.params.epochs": 2}
        by_name = linksim.run(EXAMPLE / "scenario.yaml", overrides=small)
        types = {"systems.*.blocks.pn.type": "linksim_phasenoise.channel:PhaseNoise",
                 "systems.learned16.blocks.tx.type": "linksim_phasenoise.learned:LearnedTx",
                 "systems.learned16.blocks.rx.type": "linksim_phasenoise.learned:LearnedRx"}
        by_class = linksim.run(EXAMPLE / "scenario.yaml", overrides={**small, **types})
    finally:
        refresh_plugins()
    import pandas as pd

    pd.testing.assert_frame_equal(by_name, by_class)
    b = by_name[by_name.metric == "ber"].set_index(["system", "snr_db"])["value"]
    assert len(b) == 4
    # more SNR, fewer errors; and the learned pair decodes far better than guessing
    for s in ("qam16", "learned16"):
        assert 0 < b[s, 22] < b[s, 14] < 0.2


def test_the_readme_block_example_runs_as_written(user_module):
    """The code of README "Write your own block", copied verbatim, loads as 'myblocks:Clip' and clips."""
    import re

    import torch

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme[readme.index("## Write your own block"):readme.index("## Python API")]
    code = re.search(r"```python\n(# myblocks.py\n.*?)```", section, re.S).group(1)
    user_module("myblocks", code)
    d = {"name": "clip", "systems": {"s": {"samples": 4, "blocks": {
        "src": {"type": "bit_source", "params": {"bits_per_sample": 8}},
        "map": {"type": "qam_mapper", "params": {"bits_per_symbol": 2}, "inputs": {"bits": "src.bits"}},
        "re": {"type": "complex_to_real", "inputs": {"y": "map.symbols"}},
        "clip": {"type": "myblocks:Clip", "params": {"limit": 0.5}, "inputs": {"x": "re.x"}}}}}}
    linksim.validate(d)
    d["systems"]["s"]["blocks"]["clip"]["params"]["limit"] = 0
    with pytest.raises(UserError, match=r"systems.s.blocks.clip.params.limit: Input should be greater than 0"):
        linksim.validate(d)
    from linksim.registry import block_class

    cls = block_class("myblocks:Clip")
    blk = cls("clip", cls.Params(limit=0.5), None)
    y = blk.forward(x=torch.tensor([[-2.0, 0.25, 0.75]]))["y"]
    assert y.tolist() == [[-0.5, 0.25, 0.5]]
