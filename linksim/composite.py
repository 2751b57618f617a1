"""Composite blocks (subsystems, as GNU Radio's ``hier_block2``): a named subgraph with its own parameters,
input pads and output pads, used in a system like any block.

A composite is defined under ``composites:`` in a scenario, or in a library file the scenario lists under
``include:`` (e.g. ``scenarios/lib/links.yaml``)::

    composites:
      coded_link:
        description: 5G LDPC + QAM over AWGN
        params: [k, n, snr_db, {bits_per_symbol: 2}]   # a bare name is required; {name: default} is optional
        inputs: [bits]                                  # input pads, read inside as self.<pad>
        outputs: {bits: dec.bits}                       # output pads: pad -> inner block.port
        blocks:
          enc: {type: ldpc5g_encoder, params: {k: $k, n: $n}, inputs: {bits: self.bits}}
          ...

Inside, ``$p`` / ``${expr}`` read the composite's own parameters (not the sweep variables: the instance
passes them, e.g. ``snr_db: $link_snr_db``). The expansion is a rewrite of the system's block list before the
engine sees it: inner blocks are named ``<instance>/<inner>``, ``<instance>.<pad>`` refers to the inner
output, and a ``repeat`` on the instance repeats every inner block (copy i of the subgraph is wired to copy i
of its sources). Composites may use other composites. Validation errors inside a composite name the file and
key where the wrong value is written: the instance's parameter when the inner value is a plain ``$param``.
The engine (:mod:`linksim.graph`) knows nothing of composites.
"""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any, Callable

from .errors import UserError
from .graph import _REF as _SRC, NodeCfg  # 'block[idx].port', the engine's own reference syntax

_PAD = re.compile(r"^self(\[(\d+|\*)\])?\.([A-Za-z_]\w*)$")
_VAR = re.compile(r"^\$([A-Za-z_]\w*)$")
MAX_NESTING = 16


def param_defaults(spec: list) -> tuple[list[str], dict[str, Any]]:
    """(required names, {optional name: default}) of a composite's ``params`` list."""
    required, optional = [], {}
    for item in spec:
        if isinstance(item, str):
            required.append(item)
        else:
            optional.update(item)
    return required, optional


def _rename_ref(ref: Any, inner: dict[str, str], pads: dict, inst_where: str, key: str, comp_name: str,
                where_inner: str) -> Any:
    """An inner input reference rewritten to the expanded names (``self.pad`` -> the instance's source)."""
    if isinstance(ref, list):
        out = []
        for r in ref:
            v = _rename_ref(r, inner, pads, inst_where, key, comp_name, where_inner)
            out.extend(v if isinstance(v, list) else [v])
        return out
    if not isinstance(ref, str):
        return ref  # the engine reports the bad value
    m = _PAD.match(ref)
    if m:
        pad = m.group(3)
        if pad not in pads:
            raise UserError(f"composite '{comp_name}' has no input pad '{pad}' (pads: {', '.join(pads) or 'none'})",
                            f"{where_inner}{key}")
        src = pads[pad]
        if src is None:
            raise UserError(f"input pad '{pad}' of composite '{comp_name}' is not connected",
                            f"{inst_where}.inputs")
        return src
    s = _SRC.match(ref)
    if s and s["block"] in inner:
        return f"{inner[s['block']]}{'[' + s['idx'] + ']' if s['idx'] else ''}.{s['port']}"
    if s:
        raise UserError(f"unknown block '{s['block']}' inside composite '{comp_name}' (outer blocks are reached "
                        f"through input pads: self.<pad>)", f"{where_inner}{key}")
    return ref


def expand(nodes: list[NodeCfg], composites: dict, files: dict[str, str], subst: Callable, copies: Callable,
           where: str, depth: int = 0) -> list[NodeCfg]:
    """Replace every composite instance in ``nodes`` by its inner blocks (recursively) and point references to
    an instance's output pads at the inner outputs. ``subst(obj, values, key)`` substitutes ``$p``/``${expr}``;
    ``copies(d, repeat, values, key)`` gives the per-copy parameters of a repeated block ($i, per_copy);
    ``files`` maps a composite to the file that defines it; ``where`` is the scenario file."""
    if not any(n.type in composites for n in nodes):
        return nodes
    if depth > MAX_NESTING:
        raise UserError(f"composites nested more than {MAX_NESTING} deep (a composite that uses itself?)",
                        f"{where}: {nodes[0].key}")
    out: list[NodeCfg] = []
    outputs: dict[str, dict[str, str]] = {}  # instance name -> pad -> expanded 'block.port'
    for inst in nodes:
        comp = composites.get(inst.type)
        if comp is None:
            out.append(inst)
            continue
        where_inner = files.get(inst.type, f"{where}: ")
        ckey = f"composites.{inst.type}"
        inst_where = f"{inst.file or where + ': '}{inst.key}"
        if not isinstance(inst.params, dict):
            raise UserError("must be a mapping of parameter names to values", f"{inst_where}.params")
        required, optional = param_defaults(comp.params)
        known = set(required) | set(optional)
        given = [*inst.params, *sorted(set(inst.copies[0] if inst.copies else ()) - set(inst.params))]
        for p in given:
            if p not in known:
                raise UserError(f"unknown parameter for composite '{inst.type}' (known: {', '.join(sorted(known)) or 'none'})",
                                f"{inst_where}.{'params' if p in inst.params else 'per_copy'}.{p}")
        for p in required:
            if p not in given:
                raise UserError(f"missing required parameter of composite '{inst.type}'", f"{inst_where}.params.{p}")
        values = {**optional, **inst.params}
        per_inst = [{**optional, **c, "i": j} for j, c in enumerate(inst.copies)] if inst.copies else None
        if not isinstance(inst.inputs, dict):
            raise UserError("must be a mapping of pad names to 'block.port'", f"{inst_where}.inputs")
        for p in inst.inputs:
            if p not in comp.inputs:
                raise UserError(f"composite '{inst.type}' has no input pad '{p}' (pads: {', '.join(comp.inputs) or 'none'})",
                                f"{inst_where}.inputs.{p}")
        pads = {p: inst.inputs.get(p) for p in comp.inputs}
        inner = {b: f"{inst.name}/{b}" for b in comp.blocks}
        sub: list[NodeCfg] = []
        for bname, b in comp.blocks.items():
            bkey = f"{ckey}.blocks.{bname}"
            d = b.model_dump()
            if d["repeat"] is not None and inst.repeat is not None:
                raise UserError(f"a repeated composite cannot hold a repeated block ('{inst.type}' is repeated at "
                                f"{inst.key})", f"{where_inner}{bkey}.repeat")
            params = None if per_inst else subst(d["params"], values, f"{bkey}.params")
            # where a value is the plain $param of the instance, an error in it names the instance's key
            origins = {k: (f"{inst_where}.params.{m.group(1)}" if m.group(1) in inst.params
                           else f"{where_inner}{ckey}.params")
                       for k, v in (d["params"].items() if isinstance(d["params"], dict) else ())
                       if isinstance(v, str) and (m := _VAR.match(v))}
            for p, r in (d["inputs"] or {}).items() if isinstance(d["inputs"], dict) else ():
                m = _PAD.match(r) if isinstance(r, str) else None
                if m and m.group(3) in inst.inputs:  # an error in what the pad carries names the instance
                    origins[f"@inputs.{p}"] = f"{inst_where}.inputs.{m.group(3)}"
            inputs = {p: _rename_ref(r, inner, pads, inst_where, f"{bkey}.inputs.{p}", inst.type, where_inner)
                      for p, r in (d["inputs"] or {}).items()} if isinstance(d["inputs"], dict) else d["inputs"]
            rep = inst.repeat if d["repeat"] is None else subst(d["repeat"], values, f"{bkey}.repeat")
            if isinstance(rep, str) and rep.isdigit():
                rep = int(rep)
            if per_inst is not None:  # copy j of a repeated instance reads that copy's parameters
                cps = [subst(d["params"], per_inst[j], f"{bkey}.params") for j in range(len(per_inst))]
            else:
                cps = copies(d, rep, values, bkey)
            if params is None:
                params = cps[0]
            btype = subst(d["type"], values, f"{bkey}.type")
            if not isinstance(btype, str):
                raise UserError(f"a block type must be a name, got {btype!r}", f"{inst_where}.params")
            sub.append(NodeCfg(inner[bname], btype, params, inputs, bkey, rep, file=where_inner,
                               origins=origins, context=f"in composite '{inst.type}' at {inst_where}", copies=cps))
        out.extend(expand(sub, composites, files, subst, copies, where, depth + 1))
        outputs[inst.name] = {}
        for pad, ref in comp.outputs.items():
            s = _SRC.match(ref) if isinstance(ref, str) else None
            if s is None or s["block"] not in inner:
                raise UserError(f"output pad '{pad}' must name an inner block's output ('block.port'), got {ref!r}",
                                f"{where_inner}{ckey}.outputs.{pad}")
            outputs[inst.name][pad] = f"{inner[s['block']]}.{s['port']}"
    # references to an instance's pads from outside
    for i, n in enumerate(out):
        if isinstance(n.inputs, dict):
            out[i] = dataclasses.replace(n, inputs={p: _to_pad(r, outputs, n, where) for p, r in n.inputs.items()})
    return out


def _to_pad(ref: Any, outputs: dict, node: NodeCfg, where: str) -> Any:
    if isinstance(ref, list):
        return [_to_pad(r, outputs, node, where) for r in ref]
    s = _SRC.match(ref) if isinstance(ref, str) else None
    if not s or s["block"] not in outputs:
        return ref
    pads = outputs[s["block"]]
    if s["port"] not in pads:
        raise UserError(f"composite '{s['block']}' has no output pad '{s['port']}' (pads: {', '.join(pads) or 'none'})",
                        f"{node.file or where + ': '}{node.key}.inputs")
    blk, port = pads[s["port"]].rsplit(".", 1)
    return f"{blk}{'[' + s['idx'] + ']' if s['idx'] else ''}.{port}"


def used_composites(blocks: dict, composites: dict) -> dict:
    """The definitions of the composites a system uses, recursively (they enter its points' fingerprints).
    A composite counts as used where its name is any string of the system or of a used definition (a
    ``type: $param`` may pick it through a parameter value)."""
    def strings(obj, out):
        if isinstance(obj, str):
            out.add(obj)
        elif isinstance(obj, dict):
            for v in obj.values():
                strings(v, out)
        elif isinstance(obj, list):
            for v in obj:
                strings(v, out)
        return out

    seen: dict = {}
    todo = strings({k: b.model_dump(mode="json") for k, b in blocks.items()}, set())
    while todo:
        t = todo.pop()
        if t in composites and t not in seen:
            seen[t] = composites[t].model_dump(mode="json", exclude={"description"})
            todo |= strings(seen[t], set())
    return {k: seen[k] for k in sorted(seen)}


def library_files(extra: list[str] = ()) -> list[Path]:
    """Library files `linksim blocks` lists: scenarios/lib/*.yaml under the working folder, the folders or
    files in LINKSIM_LIBRARY (os.pathsep-separated), and ``extra``."""
    import os

    out: list[Path] = []
    for item in ["scenarios/lib", *filter(None, os.environ.get("LINKSIM_LIBRARY", "").split(os.pathsep))]:
        p = Path(item)
        out.extend(sorted(p.glob("*.yaml")) if p.is_dir() else [p] if p.is_file() else [])
    for item in extra:  # asked for by name: it must exist
        p = Path(item)
        if not p.exists():
            raise UserError("library file or folder not found", f"--lib {item}")
        out.extend(sorted(p.glob("*.yaml")) if p.is_dir() else [p])
    return out


def read_library(files: list[Path]) -> dict[str, tuple[Any, str]]:
    """Every composite of the library files (and the libraries they include): name -> (CompositeCfg, file)."""
    from .scenario import CompositeCfg, resolve_includes

    raw = {"include": [str(f.resolve()) for f in files]}
    where = resolve_includes(raw, Path("."), "library")
    return {name: (CompositeCfg.model_validate(d), where[name].rstrip(": "))
            for name, d in raw.get("composites", {}).items()}


def describe_library(files: list[Path]) -> list[str]:
    """Lines describing every composite of the library files: parameters (defaults), pads, inner blocks."""
    lines: list[str] = []
    for name, (c, file) in read_library(files).items():
        req, opt = param_defaults(c.params)
        lines.append(f"{name}: {c.description or '(composite)'}  [{file}]")
        lines.append(f"    inputs:  {', '.join(c.inputs) or 'none'}")
        lines.append(f"    outputs: {', '.join(c.outputs) or 'none'}")
        for p in req:
            lines.append(f"    - {p} (required)")
        for p, v in opt.items():
            lines.append(f"    - {p} ({v!r})")
        lines.append(f"    blocks:  {', '.join(f'{b} ({x.type})' for b, x in c.blocks.items())}")
    return lines
