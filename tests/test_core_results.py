"""results.py (issue 17): exact file formats, names and messages of the result files and the output folder."""
import hashlib
import json
import os
import platform
import sys
from importlib import metadata
from pathlib import Path

import pytest

from linksim import results as R
from linksim.errors import UserError


def test_digest_is_a_20_hex_prefix_of_sha256_of_sorted_json():
    want = hashlib.sha256(b'{"a": 1, "b": [1, "x"]}').hexdigest()[:20]
    assert R.digest({"b": [1, "x"], "a": 1}) == want
    assert R.digest({"p": Path("q/r")}) == hashlib.sha256(b'{"p": "q/r"}').hexdigest()[:20]  # default=str
    assert len(R.digest(None)) == 20 and R.digest(None) == hashlib.sha256(b"null").hexdigest()[:20]


def test_atomic_write_text_and_bytes_creates_folders_and_leaves_no_temporary(tmp_path):
    p = tmp_path / "a" / "b" / "f.txt"
    R.atomic_write(p, "héllo\n")
    assert p.read_bytes() == "héllo\n".encode()
    R.atomic_write(str(p), b"\x00\x01")
    assert p.read_bytes() == b"\x00\x01"
    assert sorted(os.listdir(p.parent)) == ["f.txt"]


def test_atomic_write_failure_names_the_path_and_removes_the_temporary(tmp_path):
    d = tmp_path / "dir"
    d.mkdir()  # os.replace onto a folder fails after the temporary was written
    with pytest.raises(UserError) as e:
        R.atomic_write(d, "x")
    assert str(e.value) == f"{d}: cannot write: Is a directory"
    assert e.value.where == str(d)
    assert os.listdir(tmp_path) == ["dir"] and os.listdir(d) == []
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(UserError) as e:  # a file where a folder should be
        R.atomic_write(blocker / "sub" / "f.csv", "x")
    assert str(e.value) == f"{blocker / 'sub' / 'f.csv'}: cannot write: Not a directory"


def test_fmt_of_values():
    assert R._fmt(float("nan")) == "nan"
    assert R._fmt(0.1) == "0.1" and R._fmt(1e-20) == "1e-20" and R._fmt(2.0) == "2.0"
    assert R._fmt(float("inf")) == "inf"
    assert R._fmt(None) == "" and R._fmt(3) == "3" and R._fmt("ab") == "ab" and R._fmt(True) == "True"


def test_columns_order_system_sweep_extra_value_statistics():
    rows = [{"system": "s", "snr": 1, "metric": "m", "value": 1.0, "n": 2, "ci_high": 0.3, "input": "g"},
            {"system": "s", "chosen": "x", "errors": 1, "metric": "m", "value": 1.0, "n": 2, "ci_low": 0.1}]
    assert R.columns_for(rows, ["snr", "rate"]) == ["system", "snr", "input", "chosen", "metric", "value", "n",
                                                   "errors", "ci_low", "ci_high"]
    assert R.columns_for([], ["snr"]) == ["system", "metric", "value", "n"]


def test_csv_round_trip_types(tmp_path):
    rows = [{"system": "s", "snr": 1.5, "metric": "ber", "value": 0.25, "n": 8, "errors": 2, "samples": 8,
             "ci_low": 0.1, "ci_high": 0.5, "stopped_by": "max_samples"},
            {"system": "t", "snr": 2, "metric": "psnr", "value": float("nan"), "n": 3, "tag": "a,b"}]
    p = tmp_path / "results.csv"
    R.write_csv(p, rows, ["snr"])
    raw = p.read_bytes()
    assert b"\r" not in raw and raw.endswith(b"\n")  # plain newlines, not the csv module's \r\n
    text = p.read_text()
    assert text.splitlines() == [
        "system,snr,tag,metric,value,n,errors,ci_low,ci_high,samples,stopped_by",
        "s,1.5,,ber,0.25,8,2,0.1,0.5,8,max_samples",
        't,2,"a,b",psnr,nan,3,,,,,']
    back = R.read_csv(p)
    assert back[0] == {"system": "s", "snr": 1.5, "metric": "ber", "value": 0.25, "n": 8, "errors": 2,
                       "ci_low": 0.1, "ci_high": 0.5, "samples": 8, "stopped_by": "max_samples"}
    assert [type(back[0][k]) for k in ("n", "errors", "samples", "snr", "ci_low")] == [int, int, int, float, float]
    assert back[1]["tag"] == "a,b" and back[1]["value"] != back[1]["value"] and type(back[1]["snr"]) is float
    assert "errors" not in back[1] and back[1]["n"] == 3 and type(back[1]["n"]) is int
    R.write_csv(p, [{"system": "s", "metric": "m", "value": 1.0, "n": 1, "tag": "two\r\nlines"}], [])
    assert R.read_csv(p)[0]["tag"] == "two\r\nlines"  # quoted line breaks are kept as written
    p.write_text("system,n,value\ns,1.0,x\n")  # a non-integer n stays text
    assert R.read_csv(p) == [{"system": "s", "n": "1.0", "value": "x"}]


def test_write_json_format(tmp_path):
    p = tmp_path / "r.json"
    R.write_json(p, {"b": 1, "a": Path("x"), "l": [1]})
    assert p.read_text() == '{\n  "b": 1,\n  "a": "x",\n  "l": [\n    1\n  ]\n}\n'  # key order kept


def test_git_commit_marks_dirty_and_hides_failures(monkeypatch):
    calls = []

    class Done:
        def __init__(self, out):
            self.stdout = out

    answers = {}

    def fake_run(cmd, **kw):
        calls.append((cmd, kw))
        return Done(answers[cmd[1]])

    monkeypatch.setattr(R.subprocess, "run", fake_run)
    answers.update({"rev-parse": "abc\n", "status": " M x.py\n"})
    assert R._git_commit() == "abc-dirty"
    root = Path(R.__file__).resolve().parent.parent
    assert calls[0] == (["git", "rev-parse", "HEAD"], {"cwd": root, "capture_output": True, "text": True,
                                                       "timeout": 5})
    assert calls[1] == (["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)results"],
                        {"cwd": root, "capture_output": True, "text": True, "timeout": 5})
    answers.update({"status": "\n"})
    assert R._git_commit() == "abc"
    answers.update({"rev-parse": ""})
    assert R._git_commit() is None

    def boom(cmd, **kw):
        raise OSError("no git")

    monkeypatch.setattr(R.subprocess, "run", boom)
    assert R._git_commit() is None


def test_versions_and_run_info(monkeypatch):
    v = R.versions()
    assert v["python"] == platform.python_version() and v["torch"] == metadata.version("torch")
    assert v["numpy"] == metadata.version("numpy") and list(v)[0] == "python"
    assert "not-a-package" not in v
    listed = ["linksim", "torch", "torchvision", "sionna-no-rt", "numpy", "scipy", "scikit-learn", "faiss-cpu",
              "open_clip_torch", "pillow-heif", "torchmetrics", "ldpc", "numba", "llvmlite"]
    installed = {}
    for pkg in listed:
        try:
            installed[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    assert v == {"python": platform.python_version(), **installed}
    assert {"linksim", "torch", "numpy", "scipy"} <= set(installed)  # the core is always there
    monkeypatch.setattr(sys, "argv", ["/x/linksim", "run", "s.yaml"])
    monkeypatch.setattr(R, "_git_commit", lambda: "c0ffee")
    monkeypatch.setattr(R, "cpu_info", lambda: {"count": 99})
    info = R.run_info("s.yaml", {"name": "s"}, 7, 1.23456, {"quick": True})
    assert info == {"scenario": "s.yaml", "command": "linksim run s.yaml", "seed": 7, "git_commit": "c0ffee",
                    "versions": v, "platform": platform.platform(), "cpu": {"count": 99}, "wall_time_s": 1.235,
                    "quick": True, "resolved_scenario": {"name": "s"}}
    assert list(info)[-1] == "resolved_scenario"


def test_cpu_info_reads_the_model_name(monkeypatch):
    import torch

    model = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    want = {"count": os.cpu_count(), "model": model, "torch_capability": torch.backends.cpu.get_cpu_capability()}
    assert R.cpu_info() == want

    class NoProc(type(Path())):
        def read_text(self, *a, **k):
            raise FileNotFoundError(2, "No such file or directory")

    class ColonModel(type(Path())):
        def read_text(self, *a, **k):
            return "processor\t: 0\nvendor_id\t: X\nmodel name\t: Chip: rev 2 \nmodel name\t: other\n"

    monkeypatch.setattr(R, "Path", ColonModel)
    assert R.cpu_info()["model"] == "Chip: rev 2"
    monkeypatch.setattr(R, "Path", NoProc)
    monkeypatch.setattr(R.platform, "processor", lambda: "")
    assert R.cpu_info() == {**want, "model": None}
    monkeypatch.setattr(R.platform, "processor", lambda: "x86_64")
    assert R.cpu_info()["model"] == "x86_64"
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: 1 / 0)
    assert R.cpu_info() == {"count": os.cpu_count(), "model": "x86_64"}


def test_point_store_names_round_trip_and_unreadable_files(tmp_path):
    st = R.PointStore(tmp_path)
    assert st.dir == tmp_path / "points"
    assert st._file("a b/c-d_e.f", "fp1") == tmp_path / "points" / "a_b_c-d_e_f-fp1.json"
    assert st.load("s", "fp") is None
    st.save("s", "fp", [{"metric": "m", "value": 1.5}])
    f = tmp_path / "points" / "s-fp.json"
    assert json.loads(f.read_text()) == {"system": "s", "fingerprint": "fp", "rows": [{"metric": "m", "value": 1.5}]}
    assert st.load("s", "fp") == [{"metric": "m", "value": 1.5}]
    f.write_text('{"system": "s"}')
    assert st.load("s", "fp") is None
    f.write_text("{not json")
    assert st.load("s", "fp") is None
    f.unlink()
    f.mkdir()  # not a file
    assert st.load("s", "fp") is None


RAW = {"name": "n", "description": "d", "seed": 1, "plots": [1], "quick": {"a": 1}, "defs": {"x": 1},
       "envelopes": [2], "normal_approx": [3], "include": ["l.yaml"],
       "systems": {"s": {"description": "sd", "samples": 4}}}


def test_config_fingerprint_ignores_presentation_only():
    fp = R.config_fingerprint(RAW, False)
    assert fp == R.digest([{"seed": 1, "systems": {"s": {"samples": 4}}}, False])
    for k in ("name", "description", "plots", "quick", "defs", "envelopes", "normal_approx", "include"):
        assert R.config_fingerprint({**RAW, k: "other"}, False) == fp, k
    assert R.config_fingerprint({**RAW, "systems": {"s": {"description": "x", "samples": 4}}}, False) == fp
    assert R.config_fingerprint({**RAW, "seed": 2}, False) != fp
    assert R.config_fingerprint({**RAW, "systems": {"s": {"description": "sd", "samples": 5}}}, False) != fp
    assert R.config_fingerprint(RAW, 1) == R.digest([{"seed": 1, "systems": {"s": {"samples": 4}}}, True])
    assert R.config_fingerprint({"systems": {"s": None}}, 0) == R.digest([{"systems": {"s": None}}, False])
    assert R.config_fingerprint({"systems": "x"}, 0) == R.digest([{"systems": "x"}, False])
    assert RAW["systems"]["s"]["description"] == "sd"  # the input is not modified


def test_held_config_of_a_folder(tmp_path):
    assert R._held_config(tmp_path) is None
    (tmp_path / "points").mkdir()
    (tmp_path / "points" / "x.txt").write_text("")
    assert R._held_config(tmp_path) is None
    (tmp_path / "points" / "s-f.json").write_text("{}")
    assert R._held_config(tmp_path) == (None, "no record of their configuration")
    (tmp_path / "points" / "s-f.json").unlink()
    (tmp_path / "results.csv").write_text("")
    assert R._held_config(tmp_path) == (None, "no record of their configuration")
    (tmp_path / "run.json").write_text(json.dumps({"resolved_scenario": RAW, "scenario": "a.yaml", "quick": True}))
    assert R._held_config(tmp_path) == (R.config_fingerprint(RAW, True), "scenario a.yaml, quick=True")
    (tmp_path / "run.json").write_text(json.dumps({"resolved_scenario": RAW, "scenario": "a.yaml"}))
    assert R._held_config(tmp_path) == (R.config_fingerprint(RAW, False), "scenario a.yaml, quick=False")
    (tmp_path / "run.json").write_text(json.dumps({"scenario": "a.yaml"}))  # no resolved_scenario
    assert R._held_config(tmp_path) == (None, "an unreadable record of their configuration")
    (tmp_path / "config.json").write_text(json.dumps({"fingerprint": "f1", "scenario": "b.yaml", "quick": False}))
    assert R._held_config(tmp_path) == ("f1", "scenario b.yaml, quick=False")  # config.json wins over run.json
    for bad in ("{oops", "[1]"):
        (tmp_path / "config.json").write_text(bad)
        assert R._held_config(tmp_path) == (None, "an unreadable record of their configuration")


def test_clear_results_removes_only_what_linksim_writes(tmp_path):
    for name in ("results.csv", "run.json", "config.json", "a.png", "b.png", "notes.txt"):
        (tmp_path / name).write_text("x")
    (tmp_path / "points").mkdir()
    (tmp_path / "points" / "p.json").write_text("{}")
    (tmp_path / "quick").mkdir()
    (tmp_path / "quick" / "c.png").write_text("x")
    R.clear_results(tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["notes.txt", "quick"]
    assert os.listdir(tmp_path / "quick") == ["c.png"]
    R.clear_results(tmp_path)  # nothing to remove: no error


def test_prepare_out_resumes_refuses_or_replaces(tmp_path):
    out = tmp_path / "o" / "p"
    R.prepare_out(out, "fp1", "s.yaml", 1, False)
    assert json.loads((out / "config.json").read_text()) == {"fingerprint": "fp1", "scenario": "s.yaml",
                                                             "quick": True}
    R.PointStore(out).save("s", "f", [])
    R.prepare_out(out, "fp1", "s.yaml", True, False)  # same configuration: resume, points kept
    assert (out / "points" / "s-f.json").is_file()
    with pytest.raises(UserError) as e:
        R.prepare_out(out, "fp2", "t.yaml", False, False)
    assert str(e.value) == (f"{out}: holds results of another configuration (scenario s.yaml, quick=True); pass "
                            "--overwrite to replace them, or choose another --out")
    assert (out / "points" / "s-f.json").is_file()
    R.prepare_out(out, "fp1", "s.yaml", True, True)  # overwrite of the same configuration: a fresh run
    assert not (out / "points").exists()
    R.PointStore(out).save("s", "f", [])
    R.prepare_out(out, "fp2", "t.yaml", 0, True)
    assert not (out / "points").exists()
    assert json.loads((out / "config.json").read_text()) == {"fingerprint": "fp2", "scenario": "t.yaml",
                                                             "quick": False}


def test_prepare_out_errors_name_the_folder(tmp_path):
    f = tmp_path / "f"
    f.write_text("")
    with pytest.raises(UserError) as e:
        R.prepare_out(f, "fp", "s", False, False)
    assert str(e.value) == f"{f}: --out names a file, not a folder"
    with pytest.raises(UserError) as e:
        R.prepare_out(f / "sub", "fp", "s", False, False)
    assert str(e.value) == f"{f / 'sub'}: cannot create the output folder: Not a directory"
    with pytest.raises(UserError) as e:
        R.prepare_out(tmp_path / "a\0b", "fp", "s", False, False)
    assert str(e.value).startswith(f"{tmp_path / 'a'}") and "cannot create the output folder: " in str(e.value)


def test_prepare_out_cannot_remove_old_results(tmp_path, monkeypatch):
    out = tmp_path / "o"
    R.prepare_out(out, "fp1", "s", False, False)

    def fail(o):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(R, "clear_results", fail)
    with pytest.raises(UserError) as e:
        R.prepare_out(out, "fp2", "s", False, True)
    assert str(e.value) == f"{out}: cannot remove the old results: Permission denied"
