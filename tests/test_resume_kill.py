"""Kill -9 during a sweep, rerun with the same --out: identical results.csv, no partial files left behind."""
import os
import signal
import subprocess
import sys
import time

from conftest import write

SCEN = """
name: killme
seed: 5
sweep: {snr_db: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]}
systems:
  qpsk:
    samples: 400
    batch_size: 100
    blocks:
      src:   {type: bit_source, params: {bits_per_sample: 2000}}
      map:   {type: qam_mapper, params: {bits_per_symbol: 2}, inputs: {bits: src.bits}}
      chan:  {type: rayleigh, params: {snr_db: $snr_db}, inputs: {x: map.symbols}}
      demap: {type: qam_demapper, params: {bits_per_symbol: 2}, inputs: {y: chan.y, nvar: chan.nvar}}
      ber:   {type: ber, inputs: {bits: src.bits, bits_hat: demap.bits}}
"""


def _run(p, out, env):
    return subprocess.Popen([sys.executable, "-m", "linksim.cli", "run", p, "--out", str(out), "--no-plots"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_kill9_then_resume_is_identical(tmp_path):
    p = write(tmp_path, SCEN)
    env = {**os.environ, "LINKSIM_CACHE": str(tmp_path / "cache")}
    ref = _run(p, tmp_path / "ref", env)
    assert ref.wait(timeout=600) == 0, ref.stderr.read()
    out = tmp_path / "killed"
    proc = _run(p, out, env)
    deadline = time.time() + 300
    while time.time() < deadline:
        pts = list((out / "points").glob("*.json")) if (out / "points").is_dir() else []
        if len(pts) >= 3:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(list((out / "points").glob("*.json")))
    assert 3 <= done < 12, "the kill did not land mid-sweep"
    assert not (out / "results.csv").exists()
    again = _run(p, out, env)
    assert again.wait(timeout=600) == 0, again.stderr.read()
    assert (out / "results.csv").read_bytes() == (tmp_path / "ref" / "results.csv").read_bytes()
    leftovers = [f for f in out.rglob("*") if f.name.endswith(".tmp")]
    assert not leftovers
