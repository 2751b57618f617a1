"""Scenario files: YAML -> validated configuration, ``--set`` overrides, ``--quick`` shrinking, sweeps.

A scenario holds a ``data`` section, global ``sweep`` variables, and ``systems``; each system is a list
of blocks (type, params, inputs, optional ``repeat``). A parameter written ``$name`` takes the value of the
sweep variable ``name`` at each sweep point; ``${expr}`` evaluates an arithmetic expression of sweep variables
(e.g. ``${floor(uses * bps * rate) - 24}``). See README "Scenario format".
"""
from __future__ import annotations

import ast
import copy
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
    model_config = pydantic.ConfigDict(extra="forbid")


class DataCfg(_Strict):
    dataset: str = "fashion_mnist"
    root: str | None = None
    train_samples: pydantic.PositiveInt | None = None
    test_samples: pydantic.PositiveInt | None = None
    batch_size: pydantic.PositiveInt = 256


class BlockCfg(_Strict):
    type: str
    params: dict[str, Any] = {}
    inputs: dict[str, Any] = {}
    repeat: int | str | None = None


class StopCfg(_Strict):
    """Error-count stopping of a system's sweep points (as Sionna ``sim_ber``): stream test batches until the
    sink of ``metric`` has counted ``target_errors`` errors (and at least ``min_samples`` samples ran), or
    ``max_samples`` samples (at most the dataset's test split). With ``early_stop`` naming a sweep variable
    (e.g. ``snr_db``), a point that ends at ``max_samples`` with no error skips the points of larger values of
    that variable (the other sweep variables equal). Checked in :mod:`linksim.stopping`."""

    metric: str
    target_errors: int
    max_samples: int
    min_samples: int = 0
    early_stop: str | None = None


class SystemCfg(_Strict):
    description: str = ""
    samples: pydantic.PositiveInt | None = None  # frames per point for systems without a dataset
    stop: StopCfg | None = None  # error-count stopping (replaces 'samples')
    test_samples: pydantic.PositiveInt | None = None  # cap on test samples for this system
    batch_size: pydantic.PositiveInt | None = None
    sweep: dict[str, list] = {}
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
    name: str
    description: str = ""
    seed: int = 0
    data: DataCfg = DataCfg()
    sweep: dict[str, list] = {}
    quick: dict[str, Any] = {}
    defs: dict[str, Any] = {}  # free-form: YAML anchors reused by several systems (copied where used)
    plots: list[PlotCfg] = []
    envelopes: list[EnvelopeCfg] = []
    normal_approx: list[NormalApproxCfg] = []
    systems: dict[str, SystemCfg]

    @pydantic.field_validator("systems")
    @classmethod
    def _nonempty(cls, v):
        if not v:
            raise ValueError("at least one system is required")
        return v


def _parse_value(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _set_wild(cur: Any, parts: list[str], value: Any) -> int:
    """Set where the path exists; ``*`` matches every key/item. Returns how many places were set."""
    if not parts:
        return 0
    head, rest = parts[0], parts[1:]
    if isinstance(cur, dict):
        keys = list(cur) if head == "*" else [head] if head in cur else []
    elif isinstance(cur, list):
        keys = list(range(len(cur))) if head == "*" else [int(head)] if head.isdigit() and int(head) < len(cur) else []
    else:
        return 0
    if not rest:
        for k in keys:
            cur[k] = copy.deepcopy(value)
        return len(keys)
    return sum(_set_wild(cur[k], rest, value) for k in keys)


def set_dotted(raw: dict, dotted: str, value: Any, where: str) -> None:
    """Set ``a.b.c`` in the raw scenario. With a ``*`` segment (``systems.*.blocks.enc.params.epochs``) only
    existing keys are changed, everywhere the pattern matches (YAML merge keys copy anchors, so this is how
    one override reaches every copy)."""
    parts = dotted.split(".")
    if "*" in parts:
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


def load_raw(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError("scenario file not found", str(path))
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise UserError(f"{line}bad YAML: {problem}", str(path)) from None
    if not isinstance(raw, dict):
        raise UserError("a scenario must be a YAML mapping with 'name' and 'systems'", str(path))
    # YAML aliases and merge keys share nested objects; make every key independent so that an override of
    # one system never changes another (use a '*' wildcard to change every copy)
    return json.loads(json.dumps(raw, default=str))


def load_scenario(path: str | Path, overrides: list[str] = (), quick: bool = False,
                  seed: int | None = None) -> tuple[ScenarioCfg, dict]:
    """Load, apply ``--quick`` then ``--set`` overrides, validate. Returns (config, resolved raw dict)."""
    where = str(path)
    raw = load_raw(path)
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
        set_dotted(raw, k.strip(), _parse_value(v), f"--set {k.strip()}")
    if seed is not None:
        raw["seed"] = seed
    try:
        cfg = ScenarioCfg.model_validate(raw)
    except pydantic.ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(x) for x in err["loc"])
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        raise UserError(msg, f"{where}: {loc}") from None
    return cfg, raw


# ------------------------------------------------------------------------------------------- sweeps
_EXPR = re.compile(r"^\$\{(.+)\}$", re.S)
_FUNCS = {"floor": math.floor, "ceil": math.ceil, "round": round, "int": int, "float": float, "min": min,
          "max": max, "abs": abs, "log2": math.log2, "log10": math.log10, "sqrt": math.sqrt, "exp": math.exp}
_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}


def _parse_expr(text: str, key: str) -> ast.Expression:
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError:
        raise UserError(f"bad expression '${{{text}}}'", key) from None
    for node in ast.walk(tree):
        ok = isinstance(node, (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Constant, ast.Name, ast.Call, ast.Load,
                               ast.USub, ast.UAdd, *_BINOPS))
        if isinstance(node, ast.Call):
            ok = isinstance(node.func, ast.Name) and node.func.id in _FUNCS and not node.keywords
        if isinstance(node, ast.Constant):
            ok = isinstance(node.value, (int, float))
        if not ok:
            raise UserError(f"expression '${{{text}}}' may use only numbers, sweep variables, + - * / // % ** and "
                            f"{', '.join(_FUNCS)}", key)
    return tree


def _expr_names(tree: ast.Expression) -> list[str]:
    calls = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    return [n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and id(n) not in calls]


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
        return _BINOPS[type(node.op)](_eval(node.left, point), _eval(node.right, point))
    return _FUNCS[node.func.id](*(_eval(a, point) for a in node.args))


def _refs(obj: Any, out: dict[str, str], key: str) -> None:
    if isinstance(obj, str):
        m = _VAR.match(obj)
        if m:
            out.setdefault(m.group(1), key)
        e = _EXPR.match(obj)
        if e:
            for name in _expr_names(_parse_expr(e.group(1), key)):
                out.setdefault(name, key)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            _refs(v, out, f"{key}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            _refs(v, out, f"{key}.{i}")


def _subst(obj: Any, point: dict) -> Any:
    if isinstance(obj, str):
        m = _VAR.match(obj)
        if m:
            return point[m.group(1)]
        e = _EXPR.match(obj)
        if e:
            try:
                return _eval(_parse_expr(e.group(1), obj), point)
            except (ArithmeticError, ValueError, TypeError) as err:
                raise UserError(f"expression '{obj}' at {point}: {err}") from None
        return obj
    if isinstance(obj, dict):
        return {k: _subst(v, point) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_subst(v, point) for v in obj]
    return obj


def system_sweep(cfg: ScenarioCfg, sname: str, where: str) -> dict[str, list]:
    """The variables a system is swept over: global ones it references, plus its own ``sweep``."""
    sys_ = cfg.systems[sname]
    refs: dict[str, str] = {}
    _refs({k: b.model_dump() for k, b in sys_.blocks.items()}, refs, f"systems.{sname}.blocks")
    sweep: dict[str, list] = {}
    for var, vals in cfg.sweep.items():
        if var in refs or var in sys_.sweep:
            sweep[var] = sys_.sweep.get(var, vals)
    for var, vals in sys_.sweep.items():
        sweep.setdefault(var, vals)
    for var, key in refs.items():
        if var not in sweep:
            raise UserError(f"'${var}' is not a sweep variable (define it under 'sweep')", f"{where}: {key}")
    for var, vals in sweep.items():
        if not isinstance(vals, list) or not vals:
            raise UserError("a sweep variable needs a non-empty list of values", f"{where}: sweep.{var}")
    return sweep


def sweep_points(sweep: dict[str, list]) -> list[dict]:
    names = list(sweep)
    return [dict(zip(names, combo)) for combo in itertools.product(*(sweep[n] for n in names))]


def system_nodes(cfg: ScenarioCfg, sname: str, point: dict) -> list[NodeCfg]:
    nodes = []
    for bname, b in cfg.systems[sname].blocks.items():
        d = _subst(b.model_dump(), point)
        rep = d["repeat"]
        if isinstance(rep, str) and rep.isdigit():
            rep = int(rep)
        nodes.append(NodeCfg(bname, d["type"], d["params"], d["inputs"], f"systems.{sname}.blocks.{bname}", rep))
    return nodes
