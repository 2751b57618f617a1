"""Composite blocks, per-copy parameters of repeated blocks, and paired blocks configured once."""
import csv
import json
import textwrap
from pathlib import Path

import pytest

from conftest import write
from linksim.errors import UserError
from linksim.runner import Plan, make_context, point_config, run_scenario
from linksim.scenario import load_scenario, system_nodes

def _scenario(blocks: str, name: str, seed: int, sweep: str, samples: int, extra: str = "") -> str:
    """A one-system scenario (system 's') holding ``blocks`` (YAML lines, any indentation)."""
    return (f"name: {name}\nseed: {seed}\n{extra}sweep: {sweep}\nsystems:\n  s:\n    samples: {samples}\n    blocks:\n"
            + textwrap.indent(textwrap.dedent(blocks).strip("\n"), "      ") + "\n")


LIB = """
description: test library
composites:
  coded:
    params: [k, n, snr_db, {bits_per_symbol: 2}]
    inputs: [bits]
    outputs: {bits: dec.bits, llr: demap.llr}
    blocks:
      enc:   {type: ldpc5g_encoder, params: {k: $k, n: $n}, inputs: {bits: self.bits}}
      map:   {type: qam_mapper, params: {bits_per_symbol: $bits_per_symbol}, inputs: {bits: enc.bits}}
      chan:  {type: awgn, params: {snr_db: $snr_db}, inputs: {x: map.symbols}}
      demap: {type: qam_demapper, inputs: {y: chan.y, nvar: chan.nvar}}
      dec:   {type: ldpc5g_decoder, params: {impl: fast}, inputs: {llr: demap.llr}}
"""

COMPOSITE = _scenario("""
      src:  {type: bit_source, params: {bits_per_sample: 64}}
      link: {type: coded, params: {k: 64, n: 128, snr_db: $snr_db}, inputs: {bits: src.bits}}
      bler: {type: bler, inputs: {bits: src.bits, bits_hat: link.bits}}
""", 'comp', 3, '{snr_db: [1.0, 4.0]}', 400, 'include: [lib/l.yaml]\n')

EXPLICIT = _scenario("""
      src:  {type: bit_source, params: {bits_per_sample: 64}}
      link/enc:   {type: ldpc5g_encoder, params: {k: 64, n: 128}, inputs: {bits: src.bits}}
      link/map:   {type: qam_mapper, params: {bits_per_symbol: 2}, inputs: {bits: link/enc.bits}}
      link/chan:  {type: awgn, params: {snr_db: $snr_db}, inputs: {x: link/map.symbols}}
      link/demap: {type: qam_demapper, params: {bits_per_symbol: 2}, inputs: {y: link/chan.y, nvar: link/chan.nvar}}
      link/dec:   {type: ldpc5g_decoder, params: {k: 64, n: 128, impl: fast}, inputs: {llr: link/demap.llr}}
      bler: {type: bler, inputs: {bits: src.bits, bits_hat: link/dec.bits}}
""", 'comp', 3, '{snr_db: [1.0, 4.0]}', 400)


def _lib(tmp_path, text=LIB):
    (tmp_path / "lib").mkdir(exist_ok=True)
    (tmp_path / "lib" / "l.yaml").write_text(text)


def _rows(out):
    with open(Path(out) / "results.csv") as f:
        return list(csv.DictReader(f))


def _validate(path, overrides=()):
    cfg, _ = load_scenario(path, list(overrides))
    plan = Plan(cfg, path)
    plan.validate(make_context(cfg, path, "cpu", False, False, None))
    return cfg


def test_composite_runs_exactly_as_the_blocks_it_stands_for(tmp_path):
    _lib(tmp_path)
    a = run_scenario(write(tmp_path, COMPOSITE), tmp_path / "a", progress=False, plots=False)
    b = run_scenario(write(tmp_path, EXPLICIT, "e.yaml"), tmp_path / "b", progress=False, plots=False)
    ra, rb = _rows(a), _rows(b)
    assert ra == rb
    bler = {float(r["snr_db"]): float(r["value"]) for r in ra if r["metric"] == "bler"}
    assert bler[1.0] > 0.05 and bler[4.0] < bler[1.0]  # rate 1/2 QPSK, n = 128: waterfall between 1 and 4 dB


def test_composite_nodes_are_prefixed_and_pads_resolved(tmp_path):
    _lib(tmp_path)
    cfg = _validate(write(tmp_path, COMPOSITE))
    nodes = {n.name: n for n in system_nodes(cfg, "s", {"snr_db": 1.0})}
    assert set(nodes) == {"src", "link/enc", "link/map", "link/chan", "link/demap", "link/dec", "bler"}
    assert nodes["link/enc"].inputs == {"bits": "src.bits"}
    assert nodes["bler"].inputs["bits_hat"] == "link/dec.bits"
    assert nodes["link/chan"].params == {"snr_db": 1.0}


@pytest.mark.parametrize("override, where, text", [
    ("systems.s.blocks.link.params.k=300", "s.yaml: systems.s.blocks.link.params", "must be larger than k"),
    ("systems.s.blocks.link.params.kk=3", "s.yaml: systems.s.blocks.link.params.kk", "unknown parameter"),
    ("systems.s.blocks.link.params.bits_per_symbol=3", "s.yaml: systems.s.blocks.link.params.bits_per_symbol",
     "bits_per_symbol"),
    ("systems.s.blocks.link.inputs.bits=nowhere.bits", "s.yaml: systems.s.blocks.link.inputs.bits", "unknown block"),
    ("systems.s.blocks.link.inputs.nopad=src.bits", "s.yaml: systems.s.blocks.link.inputs.nopad", "no input pad"),
    ("systems.s.blocks.bler.inputs.bits_hat=link.nopad", "s.yaml: systems.s.blocks.bler.inputs", "no output pad"),
    ("composites.coded.blocks.map.params.bits_per_symbol=5", "l.yaml: composites.coded.blocks.map.params",
     "bits_per_symbol"),
])
def test_errors_name_the_file_and_key_where_the_value_is_written(tmp_path, override, where, text):
    _lib(tmp_path)
    path = write(tmp_path, COMPOSITE)
    if override.startswith("composites."):  # a wrong value inside the library file itself
        lib = tmp_path / "lib" / "l.yaml"
        lib.write_text(LIB.replace("bits_per_symbol: $bits_per_symbol", "bits_per_symbol: 5"))
        override = "seed=3"
    with pytest.raises(UserError) as e:
        _validate(path, [override])
    assert where in e.value.where and text in str(e.value)


def test_missing_required_parameter_and_library_errors(tmp_path):
    _lib(tmp_path)
    path = write(tmp_path, COMPOSITE.replace("k: 64, ", ""))
    with pytest.raises(UserError, match="missing required parameter of composite 'coded'") as e:
        _validate(path)
    assert e.value.where.endswith("systems.s.blocks.link.params.k")
    with pytest.raises(UserError, match="library file not found"):
        _validate(write(tmp_path, COMPOSITE.replace("lib/l.yaml", "lib/none.yaml"), "n.yaml"))
    _lib(tmp_path, LIB.replace("composites:", "composite:"))
    with pytest.raises(UserError, match="unknown key") as e:
        _validate(write(tmp_path, COMPOSITE))
    assert "l.yaml" in e.value.where
    _lib(tmp_path, LIB.replace("coded:", "awgn:"))
    with pytest.raises(UserError, match="name of a built-in block"):
        _validate(write(tmp_path, COMPOSITE.replace("type: coded,", "type: awgn,")))


def test_self_including_libraries_and_self_using_composites_stop(tmp_path):
    _lib(tmp_path, LIB.replace("description: test library", "include: [l.yaml]"))
    _validate(write(tmp_path, COMPOSITE))  # a library including itself is read once
    loop = LIB.replace("{type: awgn,", "{type: coded,").replace("params: {snr_db: $snr_db}, inputs: {x: map.symbols}",
                                                                 "params: {k: 1, n: 2, snr_db: 0}, inputs: {bits: map.symbols}")
    _lib(tmp_path, loop)
    with pytest.raises(UserError, match="nested more than"):
        _validate(write(tmp_path, COMPOSITE))


def test_library_definition_enters_the_point_fingerprint(tmp_path):
    _lib(tmp_path)
    path = write(tmp_path, COMPOSITE)
    before = json.dumps(point_config(load_scenario(path)[0], "s"), sort_keys=True)
    _lib(tmp_path, LIB.replace("impl: fast", "impl: fast, num_iter: 5"))
    after = json.dumps(point_config(load_scenario(path)[0], "s"), sort_keys=True)
    assert before != after


REPEATED = _scenario("""
      src:   {type: bit_source, params: {bits_per_sample: 100}}
      map:   {type: qam_mapper, params: {bits_per_symbol: 1}, inputs: {bits: src.bits}}
      chan:  {type: awgn, repeat: 3, params: {snr_db: "${snr_db + 4 * i}"}, inputs: {x: map.symbols}}
      demap: {type: qam_demapper, repeat: 3, inputs: {y: chan.y, nvar: chan.nvar}}
      lab:   {type: label_bits, repeat: 3, per_copy: {label: [a, b, c]}, inputs: {pred: src.bits}}
      ber:   {type: ber, repeat: 3, inputs: {bits: src.bits, bits_hat: demap.bits}}
""", 'rep', 1, '{snr_db: [0.0]}', 2000)


def test_repeat_copies_differ_by_copy_index_and_per_copy_lists(tmp_path):
    path = write(tmp_path, REPEATED.replace("      lab:   {type: label_bits, repeat: 3, per_copy: {label: [a, b, c]}, inputs: {pred: src.bits}}\n", ""))
    cfg = _validate(path)
    nodes = [n for n in system_nodes(cfg, "s", {"snr_db": 0.0}) if n.name == "chan"]
    assert [c["snr_db"] for c in nodes[0].copies] == [0.0, 4.0, 8.0]
    rows = _rows(run_scenario(path, tmp_path / "o", progress=False, plots=False))
    ber = [float(r["value"]) for r in rows if r["metric"] == "ber"]
    # BPSK, Es/N0 0 / 4 / 8 dB: Q(sqrt(2 Es/N0)) = 0.0786 / 0.0125 / 0.00019
    assert ber[0] == pytest.approx(0.0786, rel=0.1) and ber[1] == pytest.approx(0.0125, rel=0.25)
    assert ber[2] < 0.002


def test_copy_index_and_per_copy_errors(tmp_path):
    with pytest.raises(UserError, match="holds 3 values but the block is repeated 2 times"):
        _validate(write(tmp_path, REPEATED.replace("lab:   {type: label_bits, repeat: 3", "lab:   {type: label_bits, repeat: 2")))
    with pytest.raises(UserError, match="copy index of a repeated block"):
        _validate(write(tmp_path, REPEATED.replace('chan:  {type: awgn, repeat: 3, params: {snr_db: "${snr_db + 4 * i}"}',
                                                   'chan:  {type: awgn, params: {snr_db: "${snr_db + 4 * i}"}')))


PAIRED = _scenario("""
      src:   {type: bit_source, params: {bits_per_sample: 100}}
      crc:   {type: crc_encoder, params: {crc: CRC16}, inputs: {bits: src.bits}}
      enc:   {type: ldpc5g_encoder, params: {k: 58, n: 120}, inputs: {bits: crc.bits}}
      map:   {type: qam_mapper, params: {bits_per_symbol: 4}, inputs: {bits: enc.bits}}
      chan:  {type: awgn, params: {snr_db: $snr_db}, inputs: {x: map.symbols}}
      demap: {type: qam_demapper, inputs: {y: chan.y, nvar: chan.nvar}}
      dec:   {type: ldpc5g_decoder, params: {impl: fast}, inputs: {llr: demap.llr}}
      crcd:  {type: crc_decoder, inputs: {bits: dec.bits}}
      ber:   {type: ber, inputs: {bits: src.bits, bits_hat: crcd.bits}}
""", 'paired', 2, '{snr_db: [30.0]}', 50)


@pytest.mark.block("qam_demapper", "ldpc5g_decoder", "crc_decoder")
def test_paired_receivers_take_their_configuration_from_the_transmitter(tmp_path):
    path = write(tmp_path, PAIRED)
    cfg, _ = load_scenario(path)
    plan = Plan(cfg, path)
    g = plan.graph("s", {"snr_db": 30.0}, make_context(cfg, path, "cpu", False, False, None))
    assert g.blocks["demap"].p.bits_per_symbol == 4
    assert g.blocks["demap"].demapper.constellation is g.blocks["map"].mapper.constellation  # one shared object
    assert (g.blocks["dec"].p.k, g.blocks["dec"].p.n) == (58, 120)
    assert g.blocks["crcd"].p.crc == "CRC16" and g.blocks["crcd"].r == 16
    rows = _rows(run_scenario(path, tmp_path / "o", progress=False, plots=False))
    assert [float(r["value"]) for r in rows if r["metric"] == "ber"] == [0.0]


@pytest.mark.parametrize("old, new, key", [
    ("{type: qam_demapper, inputs", "{type: qam_demapper, params: {bits_per_symbol: 2}, inputs", "demap.params.bits_per_symbol"),
    ("{type: ldpc5g_decoder, params: {impl: fast}", "{type: ldpc5g_decoder, params: {impl: fast, k: 60}", "dec.params.k"),
    ("{type: crc_decoder, inputs", "{type: crc_decoder, params: {crc: CRC24A}, inputs", "crcd.params.crc"),
])
def test_a_paired_value_written_twice_differently_is_an_error_naming_the_key(tmp_path, old, new, key):
    with pytest.raises(UserError, match="differs from") as e:
        _validate(write(tmp_path, PAIRED.replace(old, new)))
    assert e.value.where.endswith(f"systems.s.blocks.{key}")
    same = PAIRED.replace(old, new.replace("bits_per_symbol: 2", "bits_per_symbol: 4").replace("k: 60", "k: 58")
                          .replace("CRC24A", "CRC16"))
    _validate(write(tmp_path, same))  # the same value written twice is allowed


def test_unpaired_receiver_needs_its_values(tmp_path):
    text = PAIRED.replace("map:   {type: qam_mapper, params: {bits_per_symbol: 4}, inputs: {bits: enc.bits}}",
                          "map:   {type: power_normalize, inputs: {x: enc.bits}}")
    with pytest.raises(UserError):
        _validate(write(tmp_path, text))


LIBRARY = str(Path(__file__).resolve().parents[1] / "scenarios" / "lib" / "links.yaml")


@pytest.mark.block("coded_link")
def test_library_coded_link_corrects_errors_in_its_waterfall(tmp_path):
    text = _scenario("""
        src:  {type: bit_source, params: {bits_per_sample: 256}}
        link: {type: coded_link, params: {k: 256, n: 512, channel: {snr_db: $snr_db}}, inputs: {bits: src.bits}}
        bler: {type: bler, inputs: {bits: src.bits, bits_hat: link.bits}}
        ber:  {type: ber, inputs: {bits: src.bits, bits_hat: link.bits}}
    """, "cl", 5, "{snr_db: [-2.0, 3.0]}", 300, f"include: [{LIBRARY}]\n")
    rows = _rows(run_scenario(write(tmp_path, text), tmp_path / "o", progress=False, plots=False))
    v = {(float(r["snr_db"]), r["metric"]): float(r["value"]) for r in rows}
    # rate 1/2 QPSK, n = 512: below capacity (-2 dB) most blocks fail; at 3 dB (past the ~2.3 dB waterfall) none
    assert v[(-2.0, "bler")] > 0.9 and 0.02 < v[(-2.0, "ber")] < 0.3
    assert v[(3.0, "bler")] < 0.02 and v[(3.0, "ber")] < 1e-3
    assert v[(-2.0, "channel_uses_per_sample")] == 256


@pytest.mark.block("sscc")
def test_library_sscc_chain_delivers_images_or_falls_back(tmp_path):
    text = f"""
name: sc
seed: 0
include: [{LIBRARY}]
data: {{dataset: fashion_mnist, test_samples: 16, train_samples: 64, batch_size: 16}}
sweep: {{snr_db: [-6.0, 20.0]}}
systems:
  s:
    blocks:
      data: {{type: dataset}}
      sscc: {{type: sscc, params: {{uses: 600, bps: 4, rate: 0.5, channel: {{snr_db: $snr_db}}}}, inputs: {{image: data.image}}}}
      mse:  {{type: psnr, params: {{name: outside}}, inputs: {{image: data.image, image_hat: sscc.image}}}}
"""
    rows = _rows(run_scenario(write(tmp_path, text), tmp_path / "o", progress=False, plots=False))
    v = {(float(r["snr_db"]), r["metric"], r.get("system")): float(r["value"]) for r in rows}
    good = {m: x for (snr, m, _), x in v.items() if snr == 20.0}
    bad = {m: x for (snr, m, _), x in v.items() if snr == -6.0}
    assert good["fallback_rate"] == 0.0 and bad["fallback_rate"] == 1.0
    assert good["psnr_db"] > bad["psnr_db"] + 5 and good["ssim"] > bad["ssim"] + 0.2
    assert good["channel_uses_per_sample"] == 600


def test_blocks_command_lists_library_composites(tmp_path, capsys, monkeypatch):
    from linksim.cli import main

    _lib(tmp_path)
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    assert main(["blocks", "--lib", str(tmp_path / "lib")]) == 0
    out = capsys.readouterr().out
    assert "== composites (library files) ==" in out
    for line in ["coded_link: 5G LDPC", "sscc: HEVC intra", "coded: (composite)", "    - k (required)",
                 "    - bits_per_symbol (2)", "    outputs: bits, llr"]:
        assert line in out
    assert main(["blocks", "--lib", str(tmp_path / "none")]) == 2
    assert "--lib" in capsys.readouterr().err
