"""Finite-blocklength normal approximation (linksim.fbl) against independent computations and known values."""
import math

import numpy as np
import pytest
from scipy import integrate
from scipy.stats import norm

from linksim.fbl import bler_normal_approx, constellation, constrained_cv, gaussian_cv, normal_approx_bler


def _biawgn(sigma):
    """Capacity and dispersion (bits) of y = x + N(0, sigma^2), x = +-1 uniform, by scipy.integrate.quad:
    i = 1 - log2(1 + exp(-2 y / sigma^2)) given x = +1."""
    pdf = lambda y: norm.pdf(y, 1, sigma)  # noqa: E731
    dens = lambda y: 1 - np.logaddexp(0, -2 * y / sigma ** 2) / math.log(2)  # noqa: E731
    c = integrate.quad(lambda y: pdf(y) * dens(y), -30, 30, limit=200)[0]
    m2 = integrate.quad(lambda y: pdf(y) * dens(y) ** 2, -30, 30, limit=200)[0]
    return c, m2 - c * c


def test_qpsk_capacity_is_one_bit_at_the_published_rate_half_threshold():
    """Binary-input AWGN has capacity 1/2 at sigma* = 0.9787 (Richardson & Urbanke, Modern Coding Theory,
    BAWGNC threshold for rate 1/2 = Eb/N0 0.187 dB). QPSK is two such channels, at Es/N0 = -20 log10 sigma*."""
    snr_db = -20 * math.log10(0.97869)
    c, _ = constrained_cv(snr_db, constellation(2))
    assert c == pytest.approx(1.0, abs=2e-4)


@pytest.mark.parametrize("snr_db", [-3.0, 0.0, 2.0, 6.0])
def test_bpsk_and_qpsk_match_quadrature_of_the_binary_input_channel(snr_db):
    rho = 10 ** (snr_db / 10)
    c1, v1 = _biawgn(math.sqrt(1 / (2 * rho)))  # BPSK: Es = 1 on one real dimension, noise N0/2 per dimension
    c, v = constrained_cv(snr_db, constellation(1))
    assert (c, v) == pytest.approx((c1, v1), rel=2e-4)  # 64-node Gauss-Hermite: ~5e-5 at 6 dB
    c2, v2 = _biawgn(math.sqrt(1 / rho))  # QPSK: each dimension carries Es/2 against N0/2
    c, v = constrained_cv(snr_db, constellation(2))
    assert (c, v) == pytest.approx((2 * c2, 2 * v2), rel=2e-4)


def test_gaussian_input_closed_form_against_monte_carlo_of_the_information_density():
    """PPV's AWGN dispersion is the variance of the information density w.r.t. the capacity-achieving output
    distribution CN(0, 1 + rho) for inputs of fixed power per use (the power shell), not for i.i.d.
    Gaussian inputs (whose variance is larger): checked by Monte Carlo with constant-modulus inputs."""
    rng = np.random.default_rng(1)
    rho = 10 ** (1.0 / 10)
    m = 400_000
    x = math.sqrt(rho) * np.exp(2j * np.pi * rng.random(m))
    z = (rng.normal(size=m) + 1j * rng.normal(size=m)) / math.sqrt(2)
    y = x + z
    i = (np.log(1 + rho) + np.abs(y) ** 2 / (1 + rho) - np.abs(z) ** 2) / math.log(2)
    c, v = gaussian_cv(1.0)
    assert c == pytest.approx(i.mean(), rel=5e-3)
    assert v == pytest.approx(i.var(), rel=1e-2)


def test_dense_constellation_at_low_snr_approaches_gaussian_input():
    c, v = constrained_cv(-10.0, constellation(6))
    cg, vg = gaussian_cv(-10.0)
    assert c == pytest.approx(cg, rel=1e-3) and v == pytest.approx(vg, rel=2e-2)


def test_normal_approximation_formula():
    n, k, snr = 128, 128, 1.5
    c, v = gaussian_cv(snr)
    direct = 0.5 * math.erfc((n * c - k + 0.5 * math.log2(n)) / math.sqrt(n * v) / math.sqrt(2))
    assert bler_normal_approx(n, k, snr) == pytest.approx(direct, rel=1e-12)
    assert normal_approx_bler(n, k, c, v) == pytest.approx(direct, rel=1e-12)
    # monotone in SNR and blocklength (at a rate below capacity), and QPSK is never better than Gaussian input
    assert bler_normal_approx(128, 128, 2.0, 2) < bler_normal_approx(128, 128, 1.0, 2)
    assert bler_normal_approx(1024, 1024, 1.5, 2) < bler_normal_approx(128, 128, 1.5, 2)
    assert bler_normal_approx(128, 128, 1.5, 2) >= bler_normal_approx(128, 128, 1.5)


def test_normal_approx_rows_and_bad_system(tmp_path, capsys):
    import linksim
    from conftest import link_blocks, write
    from linksim.cli import main

    text = """
name: t
sweep: {snr_db: [1, 2]}
normal_approx: [{systems: ["c*"]}]
systems:
  coded:
    samples: 20
    blocks:
      src:   {type: bit_source, params: {bits_per_sample: 40}}
      enc:   {type: ldpc5g_encoder, params: {k: 40, n: 80, impl: generator}, inputs: {bits: src.bits}}
      map:   {type: qam_mapper, params: {bits_per_symbol: 2}, inputs: {bits: enc.bits}}
      chan:  {type: awgn, params: {snr_db: $snr_db}, inputs: {x: map.symbols}}
      demap: {type: qam_demapper, params: {bits_per_symbol: 2}, inputs: {y: chan.y, nvar: chan.nvar}}
      dec:   {type: ldpc5g_decoder, params: {k: 40, n: 80}, inputs: {llr: demap.llr}}
      bler:  {type: bler, inputs: {bits: src.bits, bits_hat: dec.bits}}
"""
    df = linksim.run(text, cache=False, progress=False)
    na = df[df.metric == "bler_normal_approx"]
    assert set(zip(na.snr_db, na.input)) == {(1, "QPSK"), (1, "gaussian"), (2, "QPSK"), (2, "gaussian")}
    r = na[(na.snr_db == 2) & (na.input == "QPSK")].iloc[0]
    assert r["blocklength"] == 40 and r["info_bits"] == 40
    assert r["value"] == pytest.approx(bler_normal_approx(40, 40, 2.0, 2))
    bad = text.replace('systems: ["c*"]', 'systems: ["coded", "plain"]') + """  plain:
    samples: 2
    blocks:
""" + link_blocks(8)
    capsys.readouterr()  # only what validate prints
    assert main(["validate", write(tmp_path, bad, "bad.yaml")]) == 2
    err = capsys.readouterr().err
    assert "normal_approx.0.systems" in err and "ldpc5g_encoder" in err and len(err.strip().splitlines()) == 1
