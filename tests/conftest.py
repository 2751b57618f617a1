
import pytest
import torch

torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own trained-weight cache folder (no state shared with the user's cache)."""
    monkeypatch.setenv("LINKSIM_CACHE", str(tmp_path / "cache"))
    yield


def write(tmp_path, text: str, name: str = "s.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def link_blocks(bits: int, bits_per_symbol: int = 2, channel: str = "awgn", indent: int = 6) -> str:
    """YAML text of an uncoded link's blocks (bit source -> Gray QAM -> channel at $snr_db -> APP demapper ->
    BER), for the small scenarios tests write."""
    pad = " " * indent
    return "".join(pad + line + "\n" for line in [
        f"src:   {{type: bit_source, params: {{bits_per_sample: {bits}}}}}",
        f"map:   {{type: qam_mapper, params: {{bits_per_symbol: {bits_per_symbol}}}, inputs: {{bits: src.bits}}}}",
        f"chan:  {{type: {channel}, params: {{snr_db: $snr_db}}, inputs: {{x: map.symbols}}}}",
        f"demap: {{type: qam_demapper, params: {{bits_per_symbol: {bits_per_symbol}}}, "
        "inputs: {y: chan.y, nvar: chan.nvar}}",
        "ber:   {type: ber, inputs: {bits: src.bits, bits_hat: demap.bits}}",
    ])


# block-mutant check: --block TYPE selection and LINKSIM_MUTANT=TYPE:KIND (see linksim/testing/mutant_plugin.py)
pytest_plugins = ["linksim.testing.mutant_plugin"]
