"""The LDPC benchmark harness (linksim.link.ldpc_bench): run_bench and the ldpc package's decoder."""
from __future__ import annotations

import pytest
import torch

pytest.importorskip("numba")
from sionna.phy.fec.ldpc import LDPC5GEncoder  # noqa: E402

from linksim.link.ldpc_bench import bench_decoder, run_bench  # noqa: E402
from test_fast_ldpc import _bpsk_logits  # noqa: E402


def test_ldpc_package_decoder():
    pytest.importorskip("ldpc")
    enc = LDPC5GEncoder(100, 300)
    u, llr = _bpsk_logits(enc, 20, sigma=0.5, seed=7)
    dec = bench_decoder(enc, "ldpc", 20)
    assert torch.equal(dec(llr), u)


def test_run_bench_tiny():
    res = run_bench(100, 300, 10, [0.0, 4.0], 8, bits_per_symbol=2, seed=0, decoders=("sionna", "fast"))
    assert res["reference"] == "sionna"
    for name in ("sionna", "fast"):
        r = res["decoders"][name]
        for key in ("mbps", "seconds", "bler", "ber", "avg_iters", "frames_differing_from_ref"):
            assert len(r[key]) == 2, key
        assert r["mbps_total"] > 0
        assert all(0.0 <= b <= 1.0 for b in r["bler"])
        assert r["bler"][1] == 0.0
    sp, dec = res["speedup"]["fast"], res["decoders"]
    # the speed-ups are the throughput ratios, and the compiled decoder is faster than Sionna's (~100x on
    # 2 cores; 3x leaves room for a loaded machine)
    assert sp["total"] == pytest.approx(dec["fast"]["mbps_total"] / dec["sionna"]["mbps_total"])
    assert sp["per_snr"] == pytest.approx([a / b for a, b in zip(dec["fast"]["mbps"], dec["sionna"]["mbps"])])
    assert sp["total"] > 3
    # the same frames decode to the same bits (0 dB: errors to correct; 4 dB: none left)
    assert dec["fast"]["frames_differing_from_ref"] == [0, 0] and dec["fast"]["bler"] == dec["sionna"]["bler"]
    assert dec["sionna"]["bler"][0] > 0
