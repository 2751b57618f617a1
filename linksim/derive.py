"""Derived curves computed from the rows of a run: envelopes (best of several systems at each point).

An envelope is what a designer with a free choice among systems would get at each channel condition, e.g.
the SSCC envelope = per SNR the MCS with the highest mean PSNR. The choice is made per sweep point (all
columns other than system/metric/value/n must agree), and every metric of the chosen system is copied so
that PSNR and SSIM of the envelope come from the same MCS.
"""
from __future__ import annotations

import fnmatch

from .errors import UserError
from .results import BASE_COLUMNS


def match_systems(patterns: list[str], systems: list[str], where: str) -> list[str]:
    out = []
    for pat in patterns:
        hit = [s for s in systems if fnmatch.fnmatchcase(s, pat)]
        if not hit:
            raise UserError(f"'{pat}' matches no system", where)
        out += [s for s in hit if s not in out]
    return out


def check_envelopes(cfg, where: str) -> None:
    """Validate names and patterns before anything runs."""
    systems = list(cfg.systems)
    for i, env in enumerate(cfg.envelopes):
        key = f"{where}: envelopes.{i}"
        if env.name in systems:
            raise UserError(f"envelope name '{env.name}' is also a system name", f"{key}.name")
        match_systems(env.systems, systems, f"{key}.systems")


def envelope_rows(rows: list[dict], name: str, members: list[str], metric: str, mode: str = "max") -> list[dict]:
    """Rows of the envelope over ``members``; points where only some members ran use those that did."""
    def point_key(r):
        return tuple(sorted((k, str(v)) for k, v in r.items() if k not in BASE_COLUMNS and k != "chosen"))

    mem = set(members)
    best: dict[tuple, tuple[float, str]] = {}
    for r in rows:
        if r["system"] in mem and r["metric"] == metric:
            v = float(r["value"])
            if v != v:  # nan never wins
                continue
            k = point_key(r)
            cur = best.get(k)
            if cur is None or (v > cur[0] if mode == "max" else v < cur[0]) or (v == cur[0] and r["system"] < cur[1]):
                best[k] = (v, r["system"])
    out = []
    for r in rows:
        if r["system"] not in mem:
            continue
        chosen = best.get(point_key(r))
        if chosen is not None and chosen[1] == r["system"]:
            out.append({**r, "system": name, "chosen": r["system"]})
    return out


def derived_rows(cfg, rows: list[dict]) -> list[dict]:
    out = []
    for env in cfg.envelopes:
        members = match_systems(env.systems, list(cfg.systems), "envelopes")
        out += envelope_rows(rows, env.name, members, env.metric, env.mode)
    return out
