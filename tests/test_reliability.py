"""Reliability (issue 16): any input gives exit 0 or a one-line exit 2, memory bounded by the batch, no results
lost (quick runs, other configurations, interrupts, unwritable or full output folders), verified weight cache."""
import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from linksim.cli import main
from conftest import link_blocks, write

TINY = """
name: tiny
sweep: {snr_db: [0, 2]}
systems:
  s:
    samples: 8
    blocks:
""" + link_blocks(16)


def cli(*args):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main([str(a) for a in args])
    return code, err.getvalue()


def one_line_exit2(code, err, *words):
    assert code == 2, (code, err)
    lines = [l for l in err.strip().splitlines() if not l.startswith("[linksim ")]  # progress lines off a terminal
    assert len(lines) == 1 and lines[0].startswith("linksim: error: "), err
    assert "Traceback" not in err
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


# ------------------------------------------------------------------------------------------ file bytes
def test_binary_scenario_file_exit_2(tmp_path):
    p = tmp_path / "bin.yaml"
    p.write_bytes(b"name: x\n\xff\xfe\x00\x81garbage\x00\x00")
    for cmd in ("validate", "run"):
        one_line_exit2(*cli(cmd, p, *(["--out", tmp_path / "o"] if cmd == "run" else [])), str(p), "UTF")
    assert not (tmp_path / "o").exists()


def test_utf16_with_bom_is_read(tmp_path):
    p = tmp_path / "u16.yaml"
    p.write_bytes(TINY.encode("utf-16"))
    code, err = cli("validate", p)
    assert code == 0, err


@pytest.mark.parametrize("kind", ["folder", "fifo", "device", "huge", "missing", "nul"])
def test_scenario_path_that_is_not_a_text_file(tmp_path, kind):
    if kind == "folder":
        p = tmp_path
    elif kind == "fifo":
        p = tmp_path / "pipe.yaml"
        os.mkfifo(p)  # reading it would hang for ever
    elif kind == "device":
        p = Path("/dev/zero")  # reading it would never end
    elif kind == "huge":
        p = tmp_path / "huge.yaml"
        p.write_text("# " + "x" * (5 * 2**20))
    elif kind == "missing":
        p = tmp_path / "nope.yaml"
    else:
        p = "bad\x00name.yaml"
    one_line_exit2(*cli("validate", p))


@pytest.mark.parametrize("text, key", [
    ("a: &a [*a, *a]\nname: x\nsystems: {}", "nested"),  # self-referencing alias
    ("name: x\nsystems:\n" + "  " + "[" * 5000 + "]" * 5000, "nested"),
    ("l0: &l0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
        f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]\n" for i in range(1, 9)) + "name: x\n", "expands"),
    ("name: x\nseed: 1000000000000000000000000000000\nsystems: {}", "seed"),
    ("name: x\nsystems: {s: {samples: !!binary aGVsbG8=, blocks: {}}}", "binary"),
])
def test_yaml_shapes_exit_2(tmp_path, text, key):
    one_line_exit2(*cli("validate", write(tmp_path, text)), key)


# ------------------------------------------------------------------------------------- absurd numbers
@pytest.mark.parametrize("old, new, key", [
    ("snr_db: [0, 2]", "snr_db: [0, .nan]", "sweep.snr_db.1"),
    ("snr_db: [0, 2]", "snr_db: [0, -.inf]", "sweep.snr_db.1"),
    ("snr_db: $snr_db", "snr_db: .inf", "systems.s.blocks.chan.params.snr_db"),
    ("snr_db: $snr_db", "snr_db: '${10**10**10}'", "systems.s.blocks.chan.params.snr_db"),
    ("snr_db: $snr_db", "snr_db: '${exp(1000)}'", "systems.s.blocks.chan.params.snr_db"),
    ("samples: 8", "samples: 100000000000", "systems.s.samples"),
    ("samples: 8", "samples: 1.0e+300", "systems.s.samples"),
    ("samples: 8", "samples: 8\n    batch_size: 100000000000", "systems.s.batch_size"),
    ("bits_per_sample: 16", "bits_per_sample: 2000000000", "batch_size"),  # 1e9 bits x 256 samples a batch
    ("name: tiny", "name: ../../etc", "name"),
    ("src:   {type", "src:   {repeat: 1000000000, type", "repeat"),
    ("sweep: {snr_db: [0, 2]}", "sweep:\n  snr_db: [0, 2]\n  x: [" + ", ".join(["1"] * 400) + "]\n  y: ["
     + ", ".join(["1"] * 400) + "]", None),
])
def test_absurd_numbers_exit_2_naming_the_key(tmp_path, old, new, key):
    text = TINY.replace(old, new)
    assert text != TINY
    if key is None:  # 320000 sweep points, all referenced
        text = text.replace("snr_db: $snr_db", "snr_db: '${snr_db + x + y}'")
        key = "systems.s.sweep"
    t0 = time.time()
    one_line_exit2(*cli("validate", write(tmp_path, text)), key)
    assert time.time() - t0 < 10


def test_set_override_non_finite(tmp_path):
    one_line_exit2(*cli("validate", write(tmp_path, TINY), "--set", "sweep.snr_db=[1, .nan]"), "sweep.snr_db.1")


def test_batches_do_not_grow_with_samples():
    """The engine never makes a per-sample index array: 1e11 samples stream batch by batch."""
    from linksim.graph import Graph

    it = Graph.batches(None, "test", 10**11, 250)
    first = next(it)
    second = next(it)
    assert first.indices.tolist() == list(range(250)) and second.indices[0] == 250


def test_huge_samples_refused_up_front_in_a_subprocess(tmp_path):
    p = write(tmp_path, TINY.replace("samples: 8", "samples: 100000000000"))
    t0 = time.time()
    r = subprocess.run([sys.executable, "-m", "linksim.cli", "run", p, "--out", str(tmp_path / "o")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "systems.s.samples" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert time.time() - t0 < 60
    assert not (tmp_path / "o").exists()


# -------------------------------------------------------------------------------------------- CLI flags
@pytest.mark.parametrize("args", [
    ["run", "S", "--seed", "-1"], ["run", "S", "--seed", "abc"], ["run", "S", "--seed", str(2**70)],
    ["run", "S", "--device", "tpu"], ["run", "S", "--executor", "mpi"], ["run"], ["frobnicate"],
    ["validate", "S", "--set", "=3"], ["validate", "S", "--set", "a..b=3"], ["validate", "S", "--set", "nokey"],
    ["validate", "S", "--set", "systems=[1, 2]"], ["validate", "S", "--set", "sweep.snr_db=[[[[1]]]]"],
    ["plot", "NOPE"], ["bench", "--k", "-5"], ["bench", "--frames", "x"],
])
def test_cli_flag_values_exit_2(tmp_path, args):
    s = write(tmp_path, TINY)
    args = [s if a == "S" else a for a in args]
    code, err = cli(*args, *(["--out", tmp_path / "o"] if args[0] == "run" and len(args) > 1 else []))
    one_line_exit2(code, err)


def test_internal_error_is_one_line_exit_1_with_traceback_file(tmp_path, monkeypatch):
    import linksim.runner as runner

    def boom(*a, **k):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(runner, "validate_scenario", boom)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    code, err = cli("validate", write(tmp_path, TINY))
    assert code == 1
    line = err.strip()
    assert len(line.splitlines()) == 1 and "internal error: ZeroDivisionError: a bug" in line
    crash = Path(line.rsplit("full traceback in ", 1)[1].rstrip(")"))
    assert crash.is_file() and "Traceback" in crash.read_text() and "boom" in crash.read_text()


# ---------------------------------------------------------------------------------- no results lost
def _csv(out):
    return (Path(out) / "results.csv").read_bytes()


def test_quick_run_never_touches_the_full_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = write(tmp_path, TINY + "quick:\n  systems.s.samples: 4\n")
    assert cli("run", s, "--no-plots")[0] == 0
    full = tmp_path / "results" / "tiny"
    before = {p: p.read_bytes() for p in full.rglob("*") if p.is_file()}
    code, err = cli("run", s, "--quick", "--no-plots")
    assert code == 0, err
    assert (full / "quick" / "results.csv").is_file()
    after = {p: p.read_bytes() for p in full.rglob("*") if p.is_file() and "quick" not in p.parts}
    assert after == before


def test_other_configuration_refused_unless_overwrite(tmp_path):
    s = write(tmp_path, TINY)
    out = tmp_path / "o"
    assert cli("run", s, "--out", out, "--no-plots")[0] == 0
    first = _csv(out)
    # the same configuration resumes (every point from the store) and gives the same bytes
    assert cli("run", s, "--out", out, "--no-plots")[0] == 0
    assert _csv(out) == first and json.loads((out / "run.json").read_text())["points_resumed"] == 2
    # a presentation change (description, plots) is the same configuration
    s2 = write(tmp_path, TINY.replace("name: tiny", "name: tiny\ndescription: words"), "s2.yaml")
    assert cli("run", s2, "--out", out, "--no-plots")[0] == 0
    # another configuration: refused, nothing changed
    s3 = write(tmp_path, TINY.replace("samples: 8", "samples: 16"), "s3.yaml")
    line = one_line_exit2(*cli("run", s3, "--out", out, "--no-plots"), str(out), "another configuration",
                          "--overwrite")
    assert "s2.yaml" in line and _csv(out) == first
    code, err = cli("run", s3, "--out", out, "--no-plots", "--overwrite")
    assert code == 0, err
    assert _csv(out) != first and json.loads((out / "run.json").read_text())["points_resumed"] == 0
    assert len(list((out / "points").glob("*.json"))) == 2  # the old points are gone
    # --overwrite on the same configuration: a fresh run (nothing resumed), the same bytes
    second = _csv(out)
    assert cli("run", s3, "--out", out, "--no-plots", "--overwrite")[0] == 0
    assert json.loads((out / "run.json").read_text())["points_resumed"] == 0 and _csv(out) == second


def test_folder_with_results_of_unknown_configuration_refused(tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "results.csv").write_text("system,metric,value,n\n")
    one_line_exit2(*cli("run", write(tmp_path, TINY), "--out", out), "no record of their configuration")
    assert (out / "results.csv").read_text() == "system,metric,value,n\n"


def test_out_naming_a_file_or_unwritable(tmp_path):
    f = tmp_path / "file"
    f.write_text("keep me")
    s = write(tmp_path, TINY)
    one_line_exit2(*cli("run", s, "--out", f), str(f), "names a file")
    one_line_exit2(*cli("run", s, "--out", f / "sub"), str(f / "sub"), "cannot create")
    one_line_exit2(*cli("run", s, "--out", "bad\x00dir"), "cannot create")
    one_line_exit2(*cli("run", s, "--out", " "), "--out is empty")
    assert f.read_text() == "keep me"


SLOW = TINY.replace("snr_db: [0, 2]", "snr_db: [0, 1, 2, 3, 4, 5, 6, 7]").replace(
    "samples: 8", "samples: 1000\n    batch_size: 100").replace("bits_per_sample: 16", "bits_per_sample: 800")


def _start(scenario, out, cache):
    env = {**os.environ, "LINKSIM_CACHE": str(cache), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "linksim.cli", "run", scenario, "--out", str(out), "--no-plots"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_stops_at_a_batch_boundary_and_resumes_identically(tmp_path, sig, code):
    s = write(tmp_path, SLOW)
    out = tmp_path / "o"
    p = _start(s, out, tmp_path / "c")
    t0 = time.time()
    while not any((out / "points").glob("*.json")) and time.time() - t0 < 120 and p.poll() is None:
        time.sleep(0.05)
    p.send_signal(sig)
    _, err = p.communicate(timeout=60)
    assert p.returncode == code, err
    lines = [l for l in err.strip().splitlines() if not l.startswith("[linksim ")]  # progress lines off a terminal
    assert len(lines) == 1 and "rerun the same command to resume" in lines[0] and "Traceback" not in err
    kept = list((out / "points").glob("*.json"))
    assert 1 <= len(kept) < 8 and not (out / "results.csv").exists()
    assert not list(out.rglob("*.tmp"))
    # rerun (in this process): resumes the kept points; the result equals an uninterrupted run byte for byte
    assert cli("run", s, "--out", out, "--no-plots")[0] == 0
    assert json.loads((out / "run.json").read_text())["points_resumed"] == len(kept)
    assert cli("run", s, "--out", tmp_path / "ref", "--no-plots")[0] == 0
    assert _csv(out) == _csv(tmp_path / "ref")


def _tmpfs(path: Path, size: str) -> bool:
    path.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    return r.returncode == 0


def test_full_disk_exit_2_no_partial_files(tmp_path):
    mnt = tmp_path / "small"
    if not _tmpfs(mnt, "512k"):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        filler = mnt / "filler"
        with open(filler, "wb") as f:  # leave about 24 KB: room for a few points, not for every result file
            free = os.statvfs(mnt).f_bavail * os.statvfs(mnt).f_frsize
            f.write(b"\0" * max(0, free - 24 * 1024))
        s = write(tmp_path, TINY.replace("snr_db: [0, 2]", "snr_db: [" + ", ".join(map(str, range(40))) + "]"))
        out = mnt / "o"
        code, err = cli("run", s, "--out", out)
        line = one_line_exit2(code, err, "No space left")
        assert str(out) in line
        assert not list(mnt.rglob("*.tmp")) and not list(mnt.rglob(".*tmp"))
        for p in (out / "points").glob("*.json"):  # every kept point is whole
            assert json.loads(p.read_text())["rows"]
        filler.unlink()
        code, err = cli("run", s, "--out", out, "--no-plots")  # room again: resumes
        assert code == 0, err
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


# --------------------------------------------------------------------------------------- weight cache
def test_weight_cache_verifies_entries(tmp_path, capsys):
    from linksim.context import WeightCache

    c = WeightCache(tmp_path)
    state = {"w": torch.arange(1000, dtype=torch.float32)}
    c.put("k", state)
    assert torch.equal(WeightCache(tmp_path).get("k")["w"], state["w"])
    f = tmp_path / "k.pt"
    blob = bytearray(f.read_bytes())
    blob[-100] ^= 0xFF  # one flipped bit deep in the tensor data: torch.load would not notice
    f.write_bytes(bytes(blob))
    c2 = WeightCache(tmp_path)
    assert c2.get("k") is None and c2.misses == 1
    assert "k.pt" in capsys.readouterr().err
    c2.put("k", state)  # retrained and replaced
    assert torch.equal(WeightCache(tmp_path).get("k")["w"], state["w"])
    assert not list(tmp_path.glob(".*tmp"))


def test_weight_cache_write_failure_is_a_warning(tmp_path, capsys):
    from linksim.context import WeightCache

    blocker = tmp_path / "file"
    blocker.write_text("")
    c = WeightCache(blocker / "cache")  # cannot be created
    c.put("k", {"w": torch.zeros(3)})
    assert "cannot write weight cache entry" in capsys.readouterr().err
    assert torch.equal(c.get("k")["w"], torch.zeros(3))


def test_committed_results_resume_from_their_points():
    """Every committed sweep point is found again by the current code (a change to the point fingerprint, e.g. a
    new system setting, would make the main job silently retrain and recompute everything)."""
    from linksim.graph import _digest
    from linksim.results import PointStore
    from linksim.runner import Plan, point_config
    from linksim.scenario import load_scenario

    root = Path(__file__).resolve().parent.parent
    checked = 0
    for f in sorted((root / "scenarios").glob("*.yaml")):
        cfg, _ = load_scenario(f)
        store = PointStore(root / "results" / cfg.name)
        if not store.dir.is_dir():
            continue
        # points that early stop skipped are never stored (resume re-derives the skips); run.json lists them
        run_json = root / "results" / cfg.name / "run.json"
        skipped = ({(e["system"], json.dumps(e["point"], sort_keys=True))
                    for e in json.loads(run_json.read_text()).get("early_stopped", [])} if run_json.is_file() else set())
        for sname, (_, points) in Plan(cfg, str(f)).systems.items():
            for point in points:
                if (sname, json.dumps(point, sort_keys=True)) in skipped:
                    continue
                fp = _digest([point_config(cfg, sname), point, cfg.seed, cfg.data.model_dump(), False])
                assert store.load(sname, fp) is not None, (f.name, sname, point)
                checked += 1
    assert checked > 500
