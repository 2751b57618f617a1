"""Scenario files: YAML -> validated configuration, ``--set`` overrides, ``--quick`` shrinking, sweeps.

A scenario holds a ``data`` section, global ``sweep`` variables, and ``systems``; each system is a list
of blocks (type, params, inputs, optional ``repeat``). A parameter written ``$name`` takes the value of the
sweep variable ``name`` at each sweep point; ``${expr}`` evaluates an arithmetic expression of sweep variables
(e.g. ``${floor(uses * bps * rate) - 24}``). See README "Scenario format".
"""
from __future__ import annotations

import ast
import copy
import fnmatch
import functools
import itertools
import json
import math
import operator
import re
from pathlib import Path
from typing import Any, Literal

import pydantic
import yaml

from .errors import UserError
from .graph import NodeCfg

_VAR = re.compile(r"^\$([A-Za-z_]\w*)$")


class _Strict(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", allow_inf_nan=False)


# Upper bounds on counts: a sweep point of more samples than this, or a batch larger, is refused up front
# (memory is bounded by the batch, but such a run would not finish).
MAX_SAMPLES = 10**9
MAX_BATCH = 1_000_000
MAX_POINTS = 100_000  # sweep points per system
Samples = pydantic.conint(gt=0, le=MAX_SAMPLES)
BatchSize = pydantic.conint(gt=0, le=MAX_BATCH)


class DataCfg(_Strict):
    dataset: str = "fashion_mnist"
    root: str | None = None
    train_samples: Samples | None = None
    test_samples: Samples | None = None
    batch_size: BatchSize = 256


class BlockCfg(_Strict):
    type: str  # inside a composite also '$param' (e.g. the channel type)
    params: dict[str, Any] | pydantic.constr(pattern=r"^\$[A-Za-z_]\w*$") = {}  # or '$param': a composite's dict
    inputs: dict[str, Any] = {}
    repeat: int | str | None = None  # 1..graph.MAX_REPEAT, checked by the engine after sweep substitution
    per_copy: dict[str, list] = {}  # parameter -> one value per copy of a repeated block (see also $i)


class CompositeCfg(_Strict):
    """A composite block (linksim.composite): parameters, input pads, output pads, inner blocks."""

    description: str = ""
    params: list[pydantic.constr(pattern=r"^[A-Za-z_]\w*$") | dict[pydantic.constr(pattern=r"^[A-Za-z_]\w*$"), Any]] = []
    inputs: list[pydantic.constr(pattern=r"^[A-Za-z_]\w*$")] = []
    outputs: dict[str, str] = {}  # none for a composite of sinks
    blocks: dict[pydantic.constr(pattern=r"^[A-Za-z_][\w-]*$"), BlockCfg] = pydantic.Field(min_length=1)


class LibraryCfg(_Strict):
    """A library file of composites (e.g. scenarios/lib/links.yaml), listed by scenarios under ``include``."""

    description: str = ""
    include: list[str] = []
    composites: dict[str, Any] = {}


class StopCfg(_Strict):
    """Error-count stopping of a system's sweep points (as Sionna ``sim_ber``): stream test batches until the
    sink of ``metric`` has counted ``target_errors`` errors (and at least ``min_samples`` samples ran), or
    ``max_samples`` samples (at most the dataset's test split). With ``early_stop`` naming a sweep variable
    (e.g. ``snr_db``), a point that ends at ``max_samples`` with no error skips the points of larger values of
    that variable (the other sweep variables equal). Checked in :mod:`linksim.stopping`."""

    metric: str
    target_errors: pydantic.conint(le=2**62)
    max_samples: pydantic.conint(le=MAX_SAMPLES)
    min_samples: pydantic.conint(le=MAX_SAMPLES) = 0
    early_stop: str | None = None


class SystemCfg(_Strict):
    description: str = ""
    samples: Samples | None = None  # frames per point for systems without a dataset
    stop: StopCfg | None = None  # error-count stopping (replaces 'samples')
    test_samples: Samples | None = None  # cap on test samples for this system
    batch_size: BatchSize | None = None
    sweep: dict[str, list] = {}
    # constants of this system: `$name` in its blocks (and in these values, which may read sweep variables), as
    # a sweep variable would be, but not swept and not a results.csv column; one block list then serves the
    # systems that differ in a channel type or a value (e.g. `vars: {channel: rayleigh}`)
    vars: dict[pydantic.constr(pattern=r"^[A-Za-z_]\w*$"), Any] = {}
    blocks: dict[str, BlockCfg]


class PlotCfg(_Strict):
    metric: str
    systems: list[str] | None = None  # system names or glob patterns to include (default: all)
    x: str | None = None
    lines: list[str] | None = None
    where: dict[str, Any] = {}
    logy: bool | None = None
    title: str | None = None
    name: str | None = None


class EnvelopeCfg(_Strict):
    """A derived curve: at each sweep point, the best of several systems by one metric (e.g. the SSCC
    envelope = the best MCS by mean PSNR). Its rows copy every metric of the chosen system, with
    ``system`` = ``name`` and a ``chosen`` column naming the system picked."""

    name: str
    systems: list[str] = pydantic.Field(min_length=1)  # system names or glob patterns (sscc_awgn_*)
    metric: str
    mode: Literal["max", "min"] = "max"
    over: list[str] = pydantic.Field(["system"], min_length=1)  # columns chosen over (system and/or swept ones)


class NormalApproxCfg(_Strict):
    """Finite-blocklength reference rows (``bler_normal_approx``, linksim.fbl) for coded-link systems: k, n
    from the system's ldpc5g_encoder, the constellation from its qam_mapper, Es/N0 from its awgn channel."""

    systems: list[str] = pydantic.Field(min_length=1)  # system names or glob patterns
    inputs: list[Literal["constellation", "gaussian"]] = ["constellation", "gaussian"]


class ScenarioCfg(_Strict):
    name: str = pydantic.Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")  # a folder name under results/
    description: str = ""
    seed: pydantic.conint(ge=0, le=2**32 - 1) = 0
    data: DataCfg = DataCfg()
    sweep: dict[str, list] = {}
    quick: dict[str, Any] = {}
    defs: dict[str, Any] = {}  # free-form: YAML anchors reused by several systems (copied where used)
    include: list[str] = []  # library files of composites, relative to this file (resolved into 'composites')
    composites: dict[pydantic.constr(pattern=r"^[A-Za-z_][\w-]*$"), CompositeCfg] = {}
    plots: list[PlotCfg] = []
    envelopes: list[EnvelopeCfg] = []
    normal_approx: list[NormalApproxCfg] = []
    systems: dict[str, SystemCfg]
    _files: dict = pydantic.PrivateAttr(default_factory=dict)  # composite -> "file: " of its definition
    _where: str = pydantic.PrivateAttr("scenario")  # the scenario file, for error messages

    @pydantic.field_validator("systems")
    @classmethod
    def _nonempty(cls, v):
        if not v:
            raise ValueError("at least one system is required")
        return v


def _parse_value(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError):
        return text


def is_pattern(dotted: str) -> bool:
    """Whether a dotted key holds a glob segment (``*``, ``?``, ``[...]``, or ``**`` for any depth)."""
    return any(c in part for part in dotted.split(".") for c in "*?[")


def _set_wild(cur: Any, parts: list[str], value: Any) -> int:
    """Set where the path exists. A segment is an exact key or a shell-style pattern (``fnmatch``: ``*``,
    ``?``, ``[...]``; ``ldpc_*`` matches every key starting with ``ldpc_``); ``**`` matches any number of
    levels, none included. Returns how many places were set."""
    if not parts:
        return 0
    head, rest = parts[0], parts[1:]
    if isinstance(cur, dict):
        items = list(cur)
    elif isinstance(cur, list):
        items = list(range(len(cur)))
    else:
        return 0
    if head == "**":
        # the deeper levels first: a value set at this level is never searched again
        return sum(_set_wild(cur[k], parts, value) for k in items) + _set_wild(cur, rest, value)
    keys = [k for k in items if str(k) == head or fnmatch.fnmatchcase(str(k), head)]
    if not rest:
        for k in keys:
            cur[k] = copy.deepcopy(value)
        return len(keys)
    return sum(_set_wild(cur[k], rest, value) for k in keys)


def set_dotted(raw: dict, dotted: str, value: Any, where: str) -> None:
    """Set ``a.b.c`` in the raw scenario. With a pattern segment (``systems.*.blocks.enc.params.epochs``,
    ``systems.ldpc_*.test_samples``, ``**.train_samples``) only existing keys are changed, everywhere the
    pattern matches (YAML merge keys copy anchors, so this is how one override reaches every copy)."""
    parts = dotted.split(".")
    if parts.count("**") > 1:  # each more ** multiplies the paths searched by the depth of the scenario
        raise UserError(f"'{dotted}' holds more than one '**'", where)
    if is_pattern(dotted):
        if _set_wild(raw, parts, value) == 0:
            raise UserError(f"'{dotted}' matches no existing key", where)
        return
    cur: Any = raw
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(cur, list):
            if not part.isdigit() or int(part) >= len(cur):
                raise UserError(f"'{'.'.join(parts[:i + 1])}' is not an index of a list", where)
            part = int(part)
            if last:
                cur[part] = value
            else:
                cur = cur[part]
        elif isinstance(cur, dict):
            if last:
                cur[part] = value
            else:
                if cur.get(part) is None:
                    cur[part] = {}
                cur = cur[part]
        else:
            raise UserError(f"'{'.'.join(parts[:i])}' is a value, not a section", where)


# ------------------------------------------------------------------------------------------- reading
MAX_SCENARIO_BYTES = 4 * 1024 * 1024  # a scenario is hand-written text; anything larger is a mistake
MAX_VALUES = 50_000  # values after YAML aliases are expanded (alias bombs); shipped scenarios hold <= 1500
MAX_DEPTH = 64  # nesting of mappings/lists
MAX_INT = 2**63 - 1
_BOMS = [(b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"),
         (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16")]


def read_text(path: str | Path, what: str = "scenario file") -> str:
    """The text of a scenario or library file: a regular file of at most 4 MiB, in UTF-8 (or UTF-16/32 with
    a byte-order mark, as YAML allows). Anything else is a UserError naming the file."""
    where = str(path)
    try:
        p = Path(path)
        st = p.stat()
    except FileNotFoundError:
        raise UserError(f"{what} not found", where) from None
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read the {what}: {getattr(e, 'strerror', None) or e}", where) from None
    import stat as _stat

    if _stat.S_ISDIR(st.st_mode):
        raise UserError(f"is a folder, not a {what}", where)
    if not _stat.S_ISREG(st.st_mode):
        raise UserError(f"is not a regular file (a device, pipe or socket?), not a {what}", where)
    if st.st_size > MAX_SCENARIO_BYTES:
        raise UserError(f"{what} is {st.st_size} bytes; at most {MAX_SCENARIO_BYTES} are accepted", where)
    try:
        data = p.read_bytes()[:MAX_SCENARIO_BYTES + 1]
    except OSError as e:
        raise UserError(f"cannot read the {what}: {e.strerror or e}", where) from None
    enc = next((e for bom, e in _BOMS if data.startswith(bom)), "utf-8")
    try:
        return data.decode(enc)
    except UnicodeDecodeError as e:
        raise UserError(f"is not {enc.upper().replace('-SIG', '')} text (undecodable byte at offset {e.start}); "
                        f"a scenario is a YAML text file", where) from None


def plain_data(obj: Any, where: str) -> Any:
    """YAML-loaded data as independent plain JSON-like values (str keys; str/int/float/bool/None leaves).

    YAML aliases and merge keys share nested objects; every key becomes independent so that an override of
    one system never changes another. Expansion is bounded (alias bombs, self-referencing aliases, deep
    nesting, huge integers all give a UserError naming the key)."""
    count = [0]

    def walk(x, key, depth):
        count[0] += 1
        if count[0] > MAX_VALUES:
            raise UserError(f"the scenario expands to more than {MAX_VALUES} values (YAML aliases?)", where)
        if depth > MAX_DEPTH:
            raise UserError(f"nested more than {MAX_DEPTH} levels deep (a self-referencing alias?)",
                            f"{where}: {key or '<top>'}")
        if isinstance(x, dict):
            out = {}
            for k, v in x.items():
                # as json.dumps writes keys (1 -> "1", True -> "true", None -> "null"); dates as text
                ks = k if isinstance(k, str) else json.dumps(k) if k is None or isinstance(k, (int, float)) else str(k)
                sub = f"{key}.{ks}" if key else ks
                out[ks] = walk(v, sub, depth + 1)
            return out
        if isinstance(x, (list, tuple, set, frozenset)):
            return [walk(v, f"{key}.{i}" if key else str(i), depth + 1) for i, v in enumerate(x)]
        if isinstance(x, bool) or x is None or isinstance(x, str):
            return x
        if isinstance(x, int):
            if abs(x) > MAX_INT:
                raise UserError(f"integer {str(x)[:20]}... is out of range (at most 2**63 - 1)", f"{where}: {key}")
            return x
        if isinstance(x, float):
            return x
        if isinstance(x, bytes):
            raise UserError("binary (!!binary) values are not allowed", f"{where}: {key}")
        return str(x)  # dates and timestamps

    return walk(obj, "", 0)


def check_finite(obj: Any, where: str, key: str = "") -> None:
    """Non-finite numbers (.nan, .inf) make no sense anywhere in a scenario: SNRs, probabilities, sizes."""
    if isinstance(obj, float) and not math.isfinite(obj):
        raise UserError(f"non-finite number {obj!r} is not allowed", f"{where}: {key or '<top>'}")
    if isinstance(obj, dict):
        for k, v in obj.items():
            check_finite(v, where, f"{key}.{k}" if key else str(k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            check_finite(v, where, f"{key}.{i}" if key else str(i))


# libyaml's parser (PyYAML's C extension, in its wheels) when present: 8x faster than the pure-Python one on the
# shipped scenarios, which matters where thousands of files are validated (the fuzz tests). Same resolver and
# constructors, so the same data; the two parsers disagree only on a few malformed files (accept vs reject).
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _check_depth(text: str, where: str) -> None:
    """Refuse deep nesting before PyYAML's recursive composer meets it (it would take seconds to fail)."""
    depth = 0
    for ev in yaml.parse(text, Loader=_LOADER):  # the event parser is not recursive
        if isinstance(ev, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                line = ev.start_mark.line + 1 if ev.start_mark is not None else "?"
                raise UserError(f"line {line}: nested more than {MAX_DEPTH} levels deep", where)
        elif isinstance(ev, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            depth -= 1


def load_raw(path: str | Path, what: str = "scenario file") -> dict:
    text = read_text(path, what)
    where = str(path)
    try:
        _check_depth(text, where)
        raw = yaml.load(text, Loader=_LOADER)  # noqa: S506 (a safe loader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        if "maximum nesting depth" in problem:  # libyaml's own limit (1000), met before _check_depth's (scanner)
            raise UserError(f"{line}nested more than {MAX_DEPTH} levels deep", where) from None
        raise UserError(f"{line}bad YAML: {problem}", where) from None
    except RecursionError:
        raise UserError("bad YAML: nested too deeply", where) from None
    if not isinstance(raw, dict):
        raise UserError("a scenario must be a YAML mapping with 'name' and 'systems'", where)
    return plain_data(raw, where)


MAX_INCLUDES = 64


def resolve_includes(raw: dict, base: Path, where: str) -> dict[str, str]:
    """Copy the composites of the library files that ``raw`` lists under ``include`` (paths relative to the
    including file; libraries may include libraries) into ``raw['composites']``, so the resolved scenario
    (run.json, fingerprints) holds every definition it uses. Returns composite -> "file: " defining it."""
    files: dict[str, str] = {}
    comps = raw.get("composites")
    if isinstance(comps, dict):
        files.update({k: f"{where}: " for k in comps})
    seen: set[Path] = set()

    def visit(includes: Any, base: Path, key: str):
        if includes in (None, []):
            return
        if not isinstance(includes, list) or not all(isinstance(x, str) and x for x in includes):
            raise UserError("'include' must be a list of library file paths", key)
        for i, rel in enumerate(includes):
            if "\0" in rel:
                raise UserError("a path cannot hold a NUL character", f"{key}.{i}")
            lib = (base / rel).resolve()
            if lib in seen:
                continue
            seen.add(lib)
            if len(seen) > MAX_INCLUDES:
                raise UserError(f"more than {MAX_INCLUDES} library files included", f"{key}.{i}")
            lraw = load_raw(lib, "library file")
            check_finite(lraw, str(lib))
            try:
                lcfg = LibraryCfg.model_validate(lraw)
            except pydantic.ValidationError as e:
                err = e.errors()[0]
                loc = ".".join(str(x) for x in err["loc"])
                raise UserError("unknown key (a library file holds description, include, composites)"
                                if err["type"] == "extra_forbidden" else err["msg"], f"{lib}: {loc}") from None
            visit(lcfg.include, lib.parent, f"{lib}: include")
            target = raw.setdefault("composites", {})
            if not isinstance(target, dict):
                raise UserError("'composites' must map names to definitions", f"{where}: composites")
            for name, d in lcfg.composites.items():
                if name in target and files.get(name) != f"{lib}: " and not _same_composite(target[name], d):
                    raise UserError(f"composite '{name}' is also defined in {files.get(name, where).rstrip(': ')}",
                                    f"{lib}: composites.{name}")
                target[name] = copy.deepcopy(d)
                files[name] = f"{lib}: "

    visit(raw.get("include"), base, f"{where}: include")
    return files


def _same_composite(a: Any, b: Any) -> bool:
    """Two definitions that validate to the same composite (a resolved scenario saved and loaded again
    holds its library's composites inline and still lists the library)."""
    try:
        return CompositeCfg.model_validate(a).model_dump() == CompositeCfg.model_validate(b).model_dump()
    except pydantic.ValidationError:
        return False


def check_composites(cfg: ScenarioCfg, where: str) -> None:
    """A composite may not take the name of a registered block type."""
    from .registry import BLOCKS

    for name in cfg.composites:
        if name in BLOCKS:
            raise UserError(f"composite '{name}' has the name of a built-in block type; rename it",
                            f"{cfg._files.get(name, where + ': ')}composites.{name}")


def load_scenario(path: str | Path, overrides: list[str] = (), quick: bool = False,
                  seed: int | None = None, base: str | Path | None = None) -> tuple[ScenarioCfg, dict]:
    """Load, apply ``--quick`` then ``--set`` overrides, validate. Returns (config, resolved raw dict).
    ``include`` paths are relative to ``base`` (default: the scenario file's folder)."""
    where = str(path)
    raw = load_raw(path)
    files = resolve_includes(raw, Path(base) if base is not None else Path(path).parent, where)
    if quick:
        q = raw.get("quick") or {}
        if not isinstance(q, dict):
            raise UserError("'quick' must map dotted keys to values", f"{where}: quick")
        for k, v in q.items():
            set_dotted(raw, k, copy.deepcopy(v), f"{where}: quick.{k}")
    for item in overrides:
        if "=" not in item:
            raise UserError(f"--set expects dotted.key=value, got '{item}'")
        k, v = item.split("=", 1)
        k = k.strip()
        if not k or any(not part for part in k.split(".")):
            raise UserError(f"--set expects dotted.key=value, got '{item}'")
        set_dotted(raw, k, plain_data(_parse_value(v), f"--set {k}"), f"--set {k}")
    if seed is not None:
        raw["seed"] = seed
    check_finite(raw, where)
    try:
        cfg = ScenarioCfg.model_validate(raw)
    except pydantic.ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(x) for x in err["loc"])
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        if err["type"] == "less_than_equal" and loc.endswith("samples"):
            got = err.get("input")
            msg = (f"{got!r} samples per sweep point is more than linksim accepts ({MAX_SAMPLES:.0e}): at least "
                   f"{float(got) / MAX_BATCH:.2g} batches of the largest size per point would not finish in "
                   f"any reasonable time")
        if loc.startswith("composites.") and loc.split(".")[1] in files:
            raise UserError(msg, f"{files[loc.split('.')[1]]}{loc}") from None
        raise UserError(msg, f"{where}: {loc}") from None
    cfg._files, cfg._where = files, where
    check_composites(cfg, where)
    return cfg, raw


# ------------------------------------------------------------------------------------------- sweeps
_EXPR = re.compile(r"^\$\{(.+)\}$", re.S)
_FUNCS = {"floor": math.floor, "ceil": math.ceil, "round": round, "int": int, "float": float, "min": min,
          "max": max, "abs": abs, "log2": math.log2, "log10": math.log10, "sqrt": math.sqrt, "exp": math.exp}
_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}


def _parse_expr(text: str, key: str) -> tuple[ast.Expression, tuple[str, ...]]:
    """The checked syntax tree of an expression and the variable names it reads."""
    tree, names, error = _parse_text(text)
    if error:
        raise UserError(error, key) from None
    return tree, names


@functools.lru_cache(maxsize=4096)
def _parse_text(text: str) -> tuple[ast.Expression | None, tuple[str, ...], str | None]:
    """(tree, names, None) or (None, (), message). Cached: a sweep substitutes the same expressions at every
    point, and validation builds every point's graph; the trees are only read (``_eval``), never changed."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None, (), f"bad expression '${{{text}}}'"
    for node in ast.walk(tree):
        ok = isinstance(node, (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Constant, ast.Name, ast.Call, ast.Load,
                               ast.USub, ast.UAdd, *_BINOPS))
        if isinstance(node, ast.Call):
            ok = isinstance(node.func, ast.Name) and node.func.id in _FUNCS and not node.keywords
        if isinstance(node, ast.Constant):
            ok = isinstance(node.value, (int, float))
        if not ok:
            return None, (), (f"expression '${{{text}}}' may use only numbers, sweep variables, + - * / // % ** "
                              f"and {', '.join(_FUNCS)}")
    calls = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    names = tuple(n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and id(n) not in calls)
    return tree, names, None


def _eval(node, point: dict):
    if isinstance(node, ast.Expression):
        return _eval(node.body, point)
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return point[node.id]
    if isinstance(node, ast.UnaryOp):
        v = _eval(node.operand, point)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.BinOp):
        a, b = _eval(node.left, point), _eval(node.right, point)
        if isinstance(node.op, ast.Pow) and isinstance(a, int) and isinstance(b, int) and abs(b) > 256:
            a = float(a)  # 10**10**10 in integers would run for ever; in floats it overflows at once
        out = _BINOPS[type(node.op)](a, b)
        if isinstance(out, int) and abs(out) > MAX_INT:
            raise OverflowError("integer result out of range")
        return out
    return _FUNCS[node.func.id](*(_eval(a, point) for a in node.args))


def _refs(obj: Any, out: dict[str, str], key: str) -> None:
    if isinstance(obj, str):
        m = _VAR.match(obj)
        if m:
            out.setdefault(m.group(1), key)
        e = _EXPR.match(obj)
        if e:
            for name in _parse_expr(e.group(1), key)[1]:
                out.setdefault(name, key)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            _refs(v, out, f"{key}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            _refs(v, out, f"{key}.{i}")


COPY_INDEX = "i"  # $i: the copy index (0, 1, ...) in the parameters of a repeated block


def _subst(obj: Any, point: dict, key: str = "") -> Any:
    """``$var`` and ``${expr}`` replaced by their values at ``point``; while ``i`` is not in ``point``, values
    that read the copy index ``$i`` are kept for the per-copy pass."""
    if isinstance(obj, str):
        m = _VAR.match(obj)
        if m:
            if m.group(1) == COPY_INDEX and COPY_INDEX not in point:
                return obj
            if m.group(1) not in point:
                raise UserError(f"'${m.group(1)}' is not defined here", key or None)
            return point[m.group(1)]
        e = _EXPR.match(obj)
        if e:
            tree, names = _parse_expr(e.group(1), key)
            if COPY_INDEX in names and COPY_INDEX not in point:
                return obj
            missing = [n for n in names if n not in point]
            if missing:
                raise UserError(f"'{missing[0]}' in '{obj}' is not defined here", key or None)
            try:
                v = _eval(tree, point)
            except (ArithmeticError, ValueError, TypeError, RecursionError) as err:
                raise UserError(f"expression '{obj}' at {point}: {err}", key or None) from None
            if isinstance(v, complex) or (isinstance(v, float) and not math.isfinite(v)):
                raise UserError(f"expression '{obj}' at {point} is {v}, not a finite number", key or None)
            return v
        return obj
    if isinstance(obj, dict):
        return {k: _subst(v, point, f"{key}.{k}") for k, v in obj.items()}
    if isinstance(obj, list):
        return [_subst(v, point, f"{key}.{i}") for i, v in enumerate(obj)]
    return obj


def system_sweep(cfg: ScenarioCfg, sname: str, where: str) -> dict[str, list]:
    """The variables a system is swept over: global ones it references, plus its own ``sweep``."""
    sys_ = cfg.systems[sname]
    refs: dict[str, str] = {}
    _refs({k: b.model_dump() for k, b in sys_.blocks.items()}, refs, f"systems.{sname}.blocks")
    if COPY_INDEX in refs:
        if COPY_INDEX in cfg.sweep or COPY_INDEX in sys_.sweep:
            raise UserError(f"'{COPY_INDEX}' is the copy index of repeated blocks; rename the sweep variable",
                            f"{where}: {refs[COPY_INDEX]}")
        key = refs.pop(COPY_INDEX)
        bname = key.split(".")[3]
        if sys_.blocks[bname].repeat is None:
            raise UserError(f"'${COPY_INDEX}' is the copy index of a repeated block; this block has no 'repeat'",
                            f"{where}: {key}")
    for var in sys_.vars:
        key = f"{where}: systems.{sname}.vars.{var}"
        if var == COPY_INDEX:
            raise UserError(f"'{COPY_INDEX}' is the copy index of repeated blocks; rename the constant", key)
        if var in sys_.sweep or var in cfg.sweep:
            where_swept = f"systems.{sname}.sweep" if var in sys_.sweep else "sweep"
            raise UserError(f"'{var}' is also a sweep variable ({where_swept}.{var}); a constant needs another name", key)
        refs.pop(var, None)
    names = list(sys_.vars)
    for n, (var, val) in enumerate(sys_.vars.items()):  # a constant reads sweep variables and earlier constants
        own: dict[str, str] = {}
        _refs(val, own, f"systems.{sname}.vars.{var}")
        for name, key in own.items():
            if name in names[n:]:
                what = "this constant itself" if name == var else "a constant defined after this one"
                raise UserError(f"'${name}' is {what}; a constant reads sweep variables and the constants above it",
                                f"{where}: {key}")
            if name not in names:
                refs.setdefault(name, key)
    sweep: dict[str, list] = {}
    for var, vals in cfg.sweep.items():
        if var in refs or var in sys_.sweep:
            sweep[var] = sys_.sweep.get(var, vals)
    for var, vals in sys_.sweep.items():
        sweep.setdefault(var, vals)
    for var, key in refs.items():
        if var not in sweep:
            raise UserError(f"'${var}' is not a sweep variable (define it under 'sweep')", f"{where}: {key}")
    total = 1
    for var, vals in sweep.items():
        if not isinstance(vals, list) or not vals:
            raise UserError("a sweep variable needs a non-empty list of values", f"{where}: sweep.{var}")
        total *= len(vals)
        if total > MAX_POINTS:
            raise UserError(f"the sweep of this system has more than {MAX_POINTS} points", f"{where}: systems.{sname}.sweep")
    return sweep


def sweep_points(sweep: dict[str, list]) -> list[dict]:
    names = list(sweep)
    return [dict(zip(names, combo)) for combo in itertools.product(*(sweep[n] for n in names))]


def _copies(d: dict, rep: Any, point: dict, key: str) -> list | None:
    """Per-copy parameters of a repeated block: ``$i`` substituted and ``per_copy`` lists spread."""
    if not isinstance(d["params"], dict):
        return None
    per = d.get("per_copy") or {}
    refs: dict[str, str] = {}
    _refs(d["params"], refs, key)
    if not per and COPY_INDEX not in refs:
        return None
    if rep is None:
        raise UserError("'$i' and 'per_copy' need 'repeat' (they set the parameters of each copy)", f"{key}.per_copy")
    if not isinstance(rep, int) or isinstance(rep, bool) or rep < 1:
        return None  # the engine reports the bad repeat
    for p, vals in per.items():
        if len(vals) != rep:
            raise UserError(f"holds {len(vals)} values but the block is repeated {rep} times", f"{key}.per_copy.{p}")
    return [{**_subst(d["params"], {**point, COPY_INDEX: i}, f"{key}.params"),
             **{p: copy.deepcopy(vals[i]) for p, vals in per.items()}} for i in range(rep)]


def system_values(cfg: ScenarioCfg, sname: str, point: dict) -> dict:
    """What ``$name`` stands for in a system's blocks at a sweep point: the point's values and the system's
    ``vars`` (evaluated at the point, in order: a constant may read the ones above it)."""
    vars_ = cfg.systems[sname].vars
    if not vars_:
        return point
    values = dict(point)
    for k, v in vars_.items():
        values[k] = _subst(v, values, f"systems.{sname}.vars.{k}")
    return {**values, **point}


def system_nodes(cfg: ScenarioCfg, sname: str, point: dict) -> list[NodeCfg]:
    nodes = []
    point = system_values(cfg, sname, point)
    for bname, b in cfg.systems[sname].blocks.items():
        key = f"systems.{sname}.blocks.{bname}"
        d = _subst(b.model_dump(), point, key)
        rep = d["repeat"]
        if isinstance(rep, str) and rep.isdigit():
            rep = int(rep)
        nodes.append(NodeCfg(bname, d["type"], d["params"], d["inputs"], key, rep,
                             copies=_copies(d, rep, point, key)))
    if cfg.composites:
        from .composite import expand

        nodes = expand(nodes, cfg.composites, cfg._files, _subst, _copies, cfg._where)
    return nodes
