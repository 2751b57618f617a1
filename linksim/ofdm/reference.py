"""Sionna's own OFDM pipeline, built directly from Sionna (as in its MIMO-OFDM tutorial), with the grid and
channel of a linksim OFDM system: the reference of ``tests/test_ofdm.py`` (BER within 10 %) and of
``benchmarks/ofdm_bench.py`` (speed). Uncoded QAM, perfect CSI, LMMSE, APP demapper, hard decisions."""
from __future__ import annotations


def sionna_reference_ber(grid: dict, chan: dict, snr_db: float, slots: int, batch: int, seed: int,
                         bits_per_symbol: int = 2, channel_seed=None) -> tuple[float, int]:
    """(BER, bits) over ``slots`` slots in batches of ``batch`` slots. ``grid``/``chan``: the parameters of
    the system's ofdm_mapper / ofdm_channel (TDL only, one layer).

    Seed policy: as linksim's runner at a sweep point (``linksim.context.reseed``), torch's global generator
    and Sionna's are seeded with ``seed``; the bits come from torch's global generator (as linksim's
    ``bit_source``), channel draws and noise from Sionna's, in the same order. With the point's seed
    (``derive_seed(scenario seed, system, sorted(point.items()))``) both draw the same bits.
    ``channel_seed(i)``: if given, Sionna's generator is re-seeded with it before batch i's channel and noise
    draws (linksim's paired draws, ``ofdm_channel.paired``); then both see the same channels and noise."""
    import numpy as np
    import torch
    from sionna.phy import config
    from sionna.phy.channel import OFDMChannel
    from sionna.phy.channel.tr38901 import TDL
    from sionna.phy.mapping import Demapper, Mapper
    from sionna.phy.mimo import StreamManagement
    from sionna.phy.ofdm import LMMSEEqualizer, RemoveNulledSubcarriers, ResourceGrid, ResourceGridMapper

    guard = grid["fft_size"] - grid["num_used_carriers"]
    rg = ResourceGrid(num_ofdm_symbols=grid["num_ofdm_symbols"], fft_size=grid["fft_size"],
                      subcarrier_spacing=float(grid["subcarrier_spacing"]), cyclic_prefix_length=grid["cyclic_prefix_length"],
                      num_guard_carriers=(guard // 2, guard - guard // 2), pilot_pattern="kronecker",
                      pilot_ofdm_symbol_indices=grid["pilot_ofdm_symbols"])
    speed = float(chan.get("ue_speed", 0.0))  # (PyYAML reads 3.5e9 as a string)
    tdl = TDL(chan["profile"], float(chan["delay_spread"]), float(chan["carrier_frequency"]), min_speed=speed,
              max_speed=speed)
    channel = OFDMChannel(tdl, rg, add_awgn=True, normalize_channel=chan.get("normalize", False),
                          return_channel=True)
    m = bits_per_symbol
    mapper, demapper = Mapper("qam", m), Demapper("app", "qam", m)
    rgm, eq = ResourceGridMapper(rg), LMMSEEqualizer(rg, StreamManagement(np.ones([1, 1], int), 1))
    remove = RemoveNulledSubcarriers(rg)
    torch.manual_seed(seed)
    config.seed = seed
    no = 10 ** (-snr_db / 10)
    errors = bits = 0
    with torch.no_grad():
        for i in range(slots // batch):
            b = torch.randint(0, 2, (batch, rg.num_data_symbols * m), dtype=torch.float32).reshape(batch, 1, 1, -1)
            if channel_seed is not None:
                config.torch_rng(config.device).manual_seed(channel_seed(i))
            y, h = channel(rgm(mapper(b)), no)
            x_hat, no_eff = eq(y, remove(h), 0.0, no)
            b_hat = (demapper(x_hat, no_eff) > 0).float()
            errors += int((b_hat != b).sum())
            bits += b.numel()
    return errors / bits, bits
