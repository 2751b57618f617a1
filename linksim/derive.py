"""Derived curves computed from the rows of a run: envelopes (best of several systems at each point).

An envelope is what a designer with a free choice among systems would get at each channel condition, e.g.
the SSCC envelope = per SNR the MCS with the highest mean PSNR. The choice is made per sweep point (all
columns other than system/metric/value/n must agree), and every metric of the chosen system is copied so
that PSNR and SSIM of the envelope come from the same MCS.
"""
from __future__ import annotations

import fnmatch

from .errors import UserError


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
        members = match_systems(env.systems, systems, f"{key}.systems")
        swept = set(cfg.sweep).union(*(cfg.systems[m].sweep for m in members))
        for c in env.over:
            if c != "system" and c not in swept:
                raise UserError(f"'{c}' is neither 'system' nor a sweep variable", f"{key}.over")


def envelope_rows(rows: list[dict], name: str, members: list[str], metric: str, mode: str = "max",
                  over: list[str] = ("system",)) -> list[dict]:
    """Rows of the envelope over ``members``: at each point (all columns but ``over`` and the value columns)
    the member row with the best ``metric``; points where only some members ran use those that did.
    ``over`` may name swept columns too (e.g. ``[bps, rate]``: the best MCS of one system)."""
    from .results import STAT_COLUMNS

    drop = {"metric", "value", "n", "chosen", *STAT_COLUMNS, *over}

    def point_key(r):
        return tuple(sorted((k, str(v)) for k, v in r.items() if k not in drop))

    def choice(r):
        return " ".join(str(r.get(c)) if c == "system" else f"{c}={r.get(c)}" for c in over)

    mem = set(members)
    best: dict[tuple, tuple[float, str]] = {}
    for r in rows:
        if r["system"] in mem and r["metric"] == metric:
            v = float(r["value"])
            if v != v:  # nan never wins
                continue
            k, c = point_key(r), choice(r)
            cur = best.get(k)
            if cur is None or (v > cur[0] if mode == "max" else v < cur[0]) or (v == cur[0] and c < cur[1]):
                best[k] = (v, c)
    out = []
    for r in rows:
        if r["system"] not in mem:
            continue
        chosen = best.get(point_key(r))
        if chosen is not None and chosen[1] == choice(r):
            out.append({**{k: v for k, v in r.items() if k not in over}, "system": name, "chosen": chosen[1]})
    return out


def derived_rows(cfg, rows: list[dict]) -> list[dict]:
    out = []
    for env in cfg.envelopes:
        members = match_systems(env.systems, list(cfg.systems), "envelopes")
        out += envelope_rows(rows, env.name, members, env.metric, env.mode, env.over)
    return out
