"""Derived curves computed from the rows of a run: envelopes (best of several systems at each point) and
the finite-blocklength reference of coded links (``bler_normal_approx``, :mod:`linksim.fbl`).

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


def coded_link(cfg, sname: str, point: dict, key: str) -> dict:
    """k, n, bits per symbol and Es/N0 of a coded link (ldpc5g_encoder -> qam_mapper -> awgn) at a point."""
    from .scenario import system_nodes

    found: dict[str, list] = {"ldpc5g_encoder": [], "qam_mapper": [], "awgn": []}
    for node in system_nodes(cfg, sname, point):
        if node.type in found:
            found[node.type].append(node.params)
    if any(len(v) != 1 for v in found.values()):
        have = ", ".join(f"{len(v)} {t}" for t, v in found.items())
        raise UserError(f"the normal approximation needs one ldpc5g_encoder, qam_mapper and awgn block in system "
                        f"'{sname}' (it has {have})", key)
    enc, mapper, chan = (found[t][0] for t in found)
    bps = int(mapper.get("bits_per_symbol"))
    try:
        k, n, snr = int(enc["k"]), int(enc["n"]), float(chan["snr_db"])
    except (KeyError, TypeError, ValueError):
        raise UserError(f"system '{sname}': k, n of ldpc5g_encoder and snr_db of awgn must be numbers", key) from None
    if n % bps:
        raise UserError(f"system '{sname}': n={n} coded bits do not fill whole symbols of {bps} bits", key)
    return {"k": k, "uses": n // bps, "bits_per_symbol": bps, "snr_db": snr}


def check_normal_approx(cfg, where: str) -> None:
    from .scenario import sweep_points, system_sweep

    for i, na in enumerate(cfg.normal_approx):
        key = f"{where}: normal_approx.{i}.systems"
        for sname in match_systems(na.systems, list(cfg.systems), key):
            for point in sweep_points(system_sweep(cfg, sname, where)):
                coded_link(cfg, sname, point, key)


def normal_approx_rows(cfg) -> list[dict]:
    """``bler_normal_approx`` rows (value = approximate best BLER per codeword, n = 0: not simulated) for
    every point of the listed systems, per input: the constellation used (named as in ``input``) and/or
    Gaussian; ``blocklength`` (complex channel uses) and ``info_bits`` say what was approximated."""
    from .fbl import bler_normal_approx
    from .link.mapping import _BPS
    from .scenario import sweep_points, system_sweep

    out = []
    for na in cfg.normal_approx:
        for sname in match_systems(na.systems, list(cfg.systems), "normal_approx"):
            for point in sweep_points(system_sweep(cfg, sname, "normal_approx")):
                link = coded_link(cfg, sname, point, "normal_approx")
                for inp in na.inputs:
                    bps = link["bits_per_symbol"] if inp == "constellation" else None
                    eps = bler_normal_approx(link["uses"], link["k"], link["snr_db"], bps)
                    out.append({"system": sname, **point, "input": _BPS[bps] if bps else "gaussian",
                                "blocklength": link["uses"], "info_bits": link["k"],
                                "metric": "bler_normal_approx", "value": eps, "n": 0})
    return out


def derived_rows(cfg, rows: list[dict]) -> list[dict]:
    out = []
    for env in cfg.envelopes:
        members = match_systems(env.systems, list(cfg.systems), "envelopes")
        out += envelope_rows(rows, env.name, members, env.metric, env.mode, env.over)
    return out + normal_approx_rows(cfg)
