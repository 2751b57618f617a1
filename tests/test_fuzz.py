"""Fuzzing the scenario syntax and the CLI with hypothesis (issue 16): every input exits 0 or 2 with one line,
within a few seconds and bounded memory; never a traceback, never exit 1 (an internal error).

Four generators, 2000+ cases per run (validation only):
- structured scenarios: random shapes, types, unicode, huge/negative/non-finite numbers, deep nesting, aliases;
- structured mutations of a valid scenario: one value replaced, a key removed or added, anywhere;
- byte-level mutations of every shipped scenario (and library file under scenarios/);
- random command lines.
Failures found are kept under tests/fuzz_corpus/ and replayed first (test_corpus).
Deterministic: hypothesis runs derandomized, without its example database.
"""
import atexit
import contextlib
import hashlib
import io
import json
import shutil
import tempfile
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linksim.cli import main

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted((ROOT / "scenarios").rglob("*.yaml"))
CORPUS = sorted((ROOT / "tests" / "fuzz_corpus").glob("*.yaml"))
CORPUS_ARGV = json.loads((ROOT / "tests" / "fuzz_corpus" / "argv.json").read_text())
WORK = Path(tempfile.mkdtemp(prefix="linksim-fuzz-"))
atexit.register(shutil.rmtree, WORK, ignore_errors=True)  # the mutated files of this run
(WORK / "lib").symlink_to(ROOT / "scenarios" / "lib")  # mutated scenarios still find their included library
SLOW_S = 15.0  # one validation of the largest shipped scenario takes ~3 s on 2 cores
MEM_BUDGET = 2 * 2**30  # resident memory may not grow by more than this over the whole fuzz run

FUZZ = settings(derandomize=True, database=None, deadline=None, print_blob=True,
                suppress_health_check=list(HealthCheck))

_seen: dict[str, tuple[int, str]] = {}
_stats = {"cases": 0, "max_rss": 0, "rss0": 0}


def _rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def check_argv(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    t0 = time.time()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    elapsed = time.time() - t0
    msg = err.getvalue()
    _stats["cases"] += 1
    rss = _rss()
    _stats["rss0"] = _stats["rss0"] or rss
    _stats["max_rss"] = max(_stats["max_rss"], rss)
    assert code in (0, 2), f"exit {code} for {argv!r}: {msg}"
    assert "Traceback" not in msg, msg
    if code == 2:
        lines = [l for l in msg.strip().splitlines() if not l.startswith("[linksim ")]  # progress lines
        assert len(lines) == 1 and lines[0].startswith("linksim: error: "), f"{argv!r}: {msg!r}"
    assert elapsed < SLOW_S, f"{argv!r} took {elapsed:.1f} s"
    assert rss - _stats["rss0"] < MEM_BUDGET, f"resident memory grew to {rss / 2**30:.1f} GiB"
    return code, msg


def check_bytes(data: bytes) -> tuple[int, str]:
    """Validate a scenario file with these bytes (identical files are checked once)."""
    h = hashlib.sha256(data).hexdigest()
    if h in _seen:
        _stats["cases"] += 1
        return _seen[h]
    f = WORK / f"{h[:16]}.yaml"
    f.write_bytes(data)
    try:
        _seen[h] = check_argv(["validate", str(f)])
    except AssertionError:
        keep = ROOT / "tests" / "fuzz_corpus" / f"{h[:16]}.yaml"  # a new failure joins the corpus
        keep.parent.mkdir(exist_ok=True)
        keep.write_bytes(data)
        raise
    finally:
        f.unlink()
    return _seen[h]


# ----------------------------------------------------------------------------------------- strategies
KEYS = ["name", "seed", "data", "sweep", "quick", "systems", "plots", "envelopes", "defs", "description",
        "blocks", "type", "params", "inputs", "repeat", "samples", "test_samples", "batch_size", "snr_db",
        "dataset", "train_samples", "metric", "x", "bits_per_sample", "bits_per_symbol", "k", "n", "p",
        "include", "composites", "outputs", "per_copy", "channel", "channel_type", "vars", "bps"]
SPECIAL = ["$snr_db", "${snr_db * 2}", "${10**10**10}", "${1/0}", "${floor(x)}", "${" + "(" * 200 + "1" + ")" * 200 + "}",
           "src.bits", "map.symbols", "chan.y", "bit_source", "awgn", "qam_mapper", "ber", "dataset", "s[0].x",
           "s[*].x", "a:b", "linksim.block:Block", "self.bits", "$i", "${i + 1}", "$bps", "coded_link", "sscc", "lib/links.yaml", "../../etc/passwd", "\x00", "\u202e", "💥", "nan", "-0"]
numbers = st.one_of(st.integers(), st.integers(min_value=-(2**80), max_value=2**80),
                    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0, -1, 1, 2**31, 2**63, 10**11]))
scalars = st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=12), st.sampled_from(SPECIAL))
keys = st.one_of(st.sampled_from(KEYS), st.text(max_size=8))
trees = st.recursive(scalars, lambda c: st.one_of(st.lists(c, max_size=4), st.dictionaries(keys, c, max_size=4)),
                     max_leaves=25)

TINY = {
    "name": "t", "seed": 0, "sweep": {"snr_db": [0, 3]},
    "quick": {"systems.s.samples": 2},
    "plots": [{"metric": "ber", "x": "snr_db", "logy": True}],
    "systems": {"s": {"samples": 4, "batch_size": 2, "vars": {"bps": 2}, "blocks": {
        "src": {"type": "bit_source", "params": {"bits_per_sample": 8}},
        "map": {"type": "qam_mapper", "params": {"bits_per_symbol": "$bps"}, "inputs": {"bits": "src.bits"}},
        "chan": {"type": "awgn", "params": {"snr_db": "$snr_db"}, "inputs": {"x": "map.symbols"}},
        "demap": {"type": "qam_demapper", "params": {"bits_per_symbol": 2},
                  "inputs": {"y": "chan.y", "nvar": "chan.nvar"}},
        "ber": {"type": "ber", "inputs": {"bits": "src.bits", "bits_hat": "demap.bits"}},
        "bler": {"type": "bler", "params": {"block_bits": 4}, "inputs": {"bits": "src.bits", "bits_hat": "demap.bits"}},
    }}, "c": {"samples": 4, "batch_size": 2, "blocks": {
        "src": {"type": "bit_source", "params": {"bits_per_sample": 8}},
        "l": {"type": "lnk", "repeat": 2, "params": {"snr": "$snr_db"}, "per_copy": {"bps": [2, 4]},
              "inputs": {"bits": "src.bits"}},
        "ber": {"type": "ber", "repeat": 2, "inputs": {"bits": "src.bits", "bits_hat": "l.bits"}},
    }}},
    "composites": {"lnk": {"params": ["snr", {"bps": 2}], "inputs": ["bits"], "outputs": {"bits": "demap.bits"},
                           "blocks": {
        "map": {"type": "qam_mapper", "params": {"bits_per_symbol": "$bps"}, "inputs": {"bits": "self.bits"}},
        "chan": {"type": "awgn", "params": {"snr_db": "$snr"}, "inputs": {"x": "map.symbols"}},
        "demap": {"type": "qam_demapper", "inputs": {"y": "chan.y", "nvar": "chan.nvar"}}}}},
}


def _dump(obj) -> bytes:
    return yaml.safe_dump(obj, allow_unicode=True, sort_keys=False).encode()


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


@st.composite
def mutated_tiny(draw):
    obj = json.loads(json.dumps(TINY))
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(obj) if p]
        path = draw(st.sampled_from(paths))
        parent = obj
        for k in path[:-1]:
            parent = parent[k]
        op = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
        if op == "replace":
            parent[path[-1]] = draw(trees)
        elif op == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(keys)] = draw(trees)
        else:
            parent.append(draw(trees))
    return _dump(obj)


@st.composite
def shaped(draw):
    obj = draw(st.dictionaries(keys, trees, max_size=8))
    if draw(st.booleans()):
        obj.setdefault("name", draw(scalars))
        obj.setdefault("systems", draw(trees))
    text = _dump(obj)
    style = draw(st.sampled_from(["plain", "alias", "bomb", "deep", "mixed-deep"]))
    if style == "alias":
        text = b"defs: &a " + json.dumps(draw(trees)).encode() + b"\n" + text.replace(b"name:", b"other: *a\nname:", 1)
    elif style == "bomb":
        n, w = draw(st.integers(2, 12)), draw(st.integers(2, 12))
        lines = [b"b0: &b0 [1, 2]"] + [f"b{i}: &b{i} [{', '.join([f'*b{i - 1}'] * w)}]".encode() for i in range(1, n)]
        text = b"\n".join(lines) + b"\n" + text
    elif style == "deep":
        d = draw(st.integers(10, 3000))
        text = b"name: t\nsystems: " + b"[" * d + b"]" * d + b"\n"
    elif style == "mixed-deep":
        d = draw(st.integers(10, 300))
        text = b"name: t\nsystems: " + b"{a: " * d + b"1" + b"}" * d + b"\n"
    return text


@st.composite
def byte_mutation(draw, path: Path):
    data = bytearray(path.read_bytes())
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        i = draw(st.integers(0, len(data) - 1))
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "dup", "digit"]))
        if op == "flip":
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "set":
            data[i] = draw(st.integers(0, 255))
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=8) | st.sampled_from(
                [b"&x ", b"*x", b": ", b"\n  ", b"- ", b"{", b"[", b".nan", b"e999", b"999999999999", b"\t", b"'"]))
        elif op == "delete":
            del data[i:i + draw(st.integers(1, 40))]
        elif op == "dup":
            j = min(len(data), i + draw(st.integers(1, 200)))
            data[j:j] = data[i:j]
        else:  # change a number: the mutation most likely to pass the syntax and reach the blocks
            digits = [k for k, c in enumerate(data) if chr(c).isdigit()]
            if digits:
                k = draw(st.sampled_from(digits))
                data[k:k + 1] = draw(st.sampled_from([b"0", b"9", b"99999", b"-1", b"1e9", b".5", b"000000000"]))
    return bytes(data)


# ---------------------------------------------------------------------------------------------- tests
@pytest.mark.parametrize("case", CORPUS, ids=[c.name for c in CORPUS])
def test_corpus(case):
    check_bytes(case.read_bytes())


@pytest.mark.parametrize("argv", CORPUS_ARGV, ids=[repr(a)[:40] for a in CORPUS_ARGV])
def test_corpus_command_lines(argv):
    check_argv(argv)


@settings(FUZZ, max_examples=700)
@given(shaped())
def test_structured_scenarios(data):
    check_bytes(data)



@settings(FUZZ, max_examples=700)
@given(mutated_tiny())
def test_mutated_valid_scenario(data):
    check_bytes(data)



LIB_USER = b"""name: lib_user
include: [LIB]
data: {dataset: fashion_mnist, test_samples: 4, batch_size: 2}
sweep: {snr_db: [0]}
systems:
  c:
    samples: 4
    blocks:
      src: {type: bit_source, params: {bits_per_sample: 64}}
      l: {type: coded_link, params: {k: 64, n: 128, channel: {snr_db: $snr_db}}, inputs: {bits: src.bits}}
      ber: {type: ber, inputs: {bits: src.bits, bits_hat: l.bits}}
  s:
    blocks:
      data: {type: dataset}
      s: {type: sscc, params: {uses: 300, bps: 2, rate: 0.5, channel: {snr_db: $snr_db}}, inputs: {image: data.image}}
"""

# cases per shipped file: the big sweeps take seconds to validate, so they get fewer
BYTE_CASES = {"sscc_vs_jscc.yaml": 15, "multires_jscc.yaml": 30, "distributed_sensing.yaml": 50,
              "ofdm_link.yaml": 15, "ofdm_jscc.yaml": 15}


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_byte_mutations_of_shipped_files(path):
    @settings(FUZZ, max_examples=BYTE_CASES.get(path.name, 120))
    @given(byte_mutation(path))
    def run(data):
        if path.parent.name == "lib":  # a library file: validate a scenario that includes the mutated copy
            h = hashlib.sha256(data).hexdigest()[:16]
            (WORK / "mutlib").mkdir(exist_ok=True)
            (WORK / "mutlib" / f"{h}.yaml").write_bytes(data)
            check_bytes(LIB_USER.replace(b"LIB", f"mutlib/{h}.yaml".encode()))
        else:
            check_bytes(data)

    run()


ARGS = ["run", "validate", "plot", "blocks", "bench", "--out", "--set", "--quick", "--seed", "--device", "cpu",
        "--executor", "ray", "--no-cache", "--k", "--n", "--frames", "--snr", "--iters", "-1", "0", "nan", "1e99",
        "x=1", "a.b.c=[1,", "systems=", "--overwrite", "", "\x00", "/", "/dev/zero", "💥"]


@settings(FUZZ, max_examples=300)
@given(st.lists(st.one_of(st.sampled_from(ARGS), st.text(max_size=6)), max_size=6))
def test_command_lines(argv):
    if argv and argv[0] in ("run", "bench") and not any(a.startswith("--") and a not in ARGS for a in argv):
        # a valid run or bench would do real work: point run at a missing scenario, keep bench's flags invalid
        argv = argv[:1] + ["/nonexistent/s.yaml" if argv[0] == "run" else "--k=-1"] + argv[1:]
    if "--help" in argv or "-h" in argv:
        return
    check_argv(argv)



def test_zz_case_count_and_memory():
    """Runs last in this file: the number of cases checked above, and the memory they needed."""
    if _stats["cases"] == 0:
        pytest.skip("run with the fuzz tests above")
    print(f"fuzz: {_stats['cases']} cases, resident memory {_stats['rss0'] / 2**30:.2f} -> "
          f"{_stats['max_rss'] / 2**30:.2f} GiB")
    assert _stats["cases"] >= 2000
