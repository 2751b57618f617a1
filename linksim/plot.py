"""One PNG per metric (x = first swept variable, one line per system/other label), or as the scenario says.

Rows with a 95 % interval (``ci_low``/``ci_high``) are drawn with a shaded band; rows of
``<metric>_normal_approx`` (finite-blocklength reference, :mod:`linksim.fbl`) of the plotted systems are
drawn on the plot of ``<metric>`` as dashed lines in the colour of their system.
"""
from __future__ import annotations

import fnmatch
import io
import sys
from pathlib import Path

from .results import BASE_COLUMNS, STAT_COLUMNS, atomic_write, read_csv

LOG_METRICS = {"ber", "bler"}
REF_SUFFIX = "_normal_approx"
# metrics that are fractions in results.csv and drawn in percent
PERCENT_METRICS = {"accuracy", "recall_macro", "precision_macro", "fallback_rate", "codec_fit_rate"}
LABELS = {  # axis labels with units; anything else: see axis_label()
    "accuracy": "Accuracy (%)", "recall_macro": "Macro recall (%)", "precision_macro": "Macro precision (%)",
    "fallback_rate": "Fallback rate (%)", "codec_fit_rate": "Codec fit rate (%)",
    "psnr_db": "PSNR (dB)", "ssim": "SSIM", "ber": "BER", "bler": "BLER",
    "bits_per_sample": "Payload (bit/sample)", "bits_per_node": "Payload (bit/node)",
    "payload_bits": "Payload (bit)", "channel_uses_per_sample": "Channel uses per sample",
    "bandwidth_ratio": "Bandwidth ratio (channel uses / source dimension)",
    "snr_db": "Es/N0 (dB)", "link_snr_db": "Link Es/N0 (dB)", "image_snr_db": "Image SNR (dB)",
    "train_snr_db": "Training Es/N0 (dB)", "nodes": "Nodes", "bsc_p": "BSC crossover probability",
    "bec_p": "BEC erasure probability", "uses": "Channel uses per image", "codeword": "Codeword length n (bit)",
}
SCHEMES = {"full_feature": "Full feature", "maxpro": "MaxPro", "maxamp": "MaxAmp", "maxproamp": "MaxProAmp",
           "decision": "Decision"}


def axis_label(name: str) -> str:
    """The label with its unit of a sweep variable or metric ("Image SNR (dB)", "Accuracy (%)")."""
    if name in LABELS:
        return LABELS[name]
    if name.startswith("top") and name.endswith("_accuracy"):
        return f"Top-{name[3:-9]} accuracy (%)"
    words = name.replace("_", " ")
    if name.endswith("_db"):
        words = words[:-3]
        words = words.replace("snr", "SNR").replace("psnr", "PSNR")
        return f"{words[:1].upper()}{words[1:]} (dB)"
    return words[:1].upper() + words[1:]


def _scale(metric: str) -> float:
    return 100.0 if metric in PERCENT_METRICS or (metric.startswith("top") and metric.endswith("_accuracy")) else 1.0


def _payloads(rows: list[dict], sweep_vars: list[str]) -> dict:
    """(system, scheme, sweep values) -> (bits, unit) from the bits_per_node (else bits_per_sample) rows."""
    out: dict = {}
    for metric, unit in (("bits_per_sample", "bit/sample"), ("bits_per_node", "bit/node")):
        for r in rows:
            if r["metric"] == metric:
                key = (str(r["system"]), str(r.get("scheme")), tuple(str(r.get(v)) for v in sweep_vars))
                out[key] = (float(r["value"]), unit)
    return out


def _payload_text(line_rows: list[dict], payloads: dict, sweep_vars: list[str]) -> str:
    """", 128 bit/node" when every point of a line has the same payload, else ""."""
    got = {payloads.get((str(r["system"]), str(r.get("scheme")), tuple(str(r.get(v)) for v in sweep_vars)))
           for r in line_rows}
    if len(got) != 1 or None in got:
        return ""
    bits, unit = got.pop()
    return f", {bits:g} {unit}"


def _ci(r) -> tuple[float, float]:
    try:
        return float(r["ci_low"]), float(r["ci_high"])
    except (KeyError, TypeError, ValueError):
        return float("nan"), float("nan")


def _select(rows: list[dict], metric: str, spec: dict) -> list[dict]:
    """The rows of ``metric`` that a plot spec keeps: its ``systems`` patterns and ``where`` values."""
    pats = spec.get("systems")
    return [r for r in rows if r["metric"] == metric
            and (not pats or any(fnmatch.fnmatchcase(str(r["system"]), p) for p in pats))
            and all(_same(r.get(k), v) for k, v in (spec.get("where") or {}).items())]


def _num(v):
    return isinstance(v, (int, float))


def _same(a, b) -> bool:
    """Equal as numbers when both are numbers (CSV values come back as floats), else as strings."""
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return str(a) == str(b)


def plot_rows(rows: list[dict], out_dir: str | Path, sweep_vars: list[str], specs: list[dict] | None = None) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    metrics = list(dict.fromkeys(r["metric"] for r in rows))
    payloads = _payloads(rows, sweep_vars)
    if not specs:
        specs = [{"metric": m} for m in metrics if not m.endswith(REF_SUFFIX)]
    written = []
    for spec in specs:
        metric = spec["metric"]
        sel = _select(rows, metric, spec)
        x = spec.get("x") or next((v for v in sweep_vars if any(_num(r.get(v)) for r in sel)), None)
        if x is None or not sel:
            continue
        sel = [r for r in sel if _num(r.get(x))]
        if not sel:
            continue
        label_cols = spec.get("lines") or [c for c in dict.fromkeys(k for r in sel for k in r)
                                           if c not in BASE_COLUMNS + STAT_COLUMNS + [x, "chosen"] and c not in (spec.get("where") or {})
                                           and len({str(r.get(c)) for r in sel}) > 1]
        if "system" not in label_cols and len({r["system"] for r in sel}) > 1:
            label_cols = ["system"] + label_cols
        keyed: dict[tuple, list] = {}
        line_rows: dict[tuple, list] = {}
        scale = _scale(metric)
        for r in sel:
            k = tuple(r.get(c) for c in label_cols)
            keyed.setdefault(k, []).append((float(r[x]), float(r["value"]) * scale, *(c * scale for c in _ci(r))))
            line_rows.setdefault(k, []).append(r)
        if any(len({p[0] for p in pts}) > 1 for pts in keyed.values()):
            # a group with a single x value is not a curve (e.g. another system swept over other variables)
            keyed = {k: v for k, v in keyed.items() if len({p[0] for p in v}) > 1}
        # name lines by the columns that still differ between them
        show = [i for i, c in enumerate(label_cols) if len({str(k[i]) for k in keyed}) > 1]
        groups: dict[str, list] = {}
        per_system: dict = {}
        for k in keyed:
            per_system[k[:1]] = per_system.get(k[:1], 0) + 1
        thin: set[str] = set()
        for k, pts in keyed.items():
            lab = " ".join(SCHEMES.get(str(k[i]), str(k[i])) if label_cols[i] in ("system", "scheme")
                           else f"{label_cols[i]}={k[i]:g}" if _num(k[i]) else f"{label_cols[i]}={k[i]}"
                           for i in show if k[i] is not None)
            lab = lab or str(k[0] if k else metric)
            if "scheme" in label_cols and not metric.startswith(("bits_per", "payload")):
                lab += _payload_text(line_rows[k], payloads, sweep_vars)
            groups[lab] = pts
            if label_cols and label_cols[0] == "system" and per_system[k[:1]] > 2 < len(keyed):
                thin.add(lab)  # one of many curves of a system (e.g. one per MCS): drawn thin, the rest bold
        if thin == set(groups):
            thin = set()  # every system has several curves: all drawn alike
        logy = spec.get("logy")
        if logy is None:
            logy = metric in LOG_METRICS
        fig, ax = plt.subplots(figsize=(9.5 if len(groups) > 6 else 7, 4.8))
        colours = plt.get_cmap("tab20" if len(groups) > 10 else "tab10").colors
        bold = iter(["black", "tab:red", "tab:blue", "tab:green", "tab:purple", "tab:orange", "tab:brown"] * 4)
        system_colour: dict[str, str] = {}
        for i, (lab, pts) in enumerate(groups.items()):
            pts.sort()
            if lab in thin:
                style = {"lw": 0.9, "ms": 2, "alpha": 0.7, "color": colours[i % len(colours)]}
            elif thin:  # highlighted against many thin curves: strong colours
                style = {"lw": 2.2, "ms": 3.5, "color": next(bold)}
            else:
                style = {"lw": 1.5, "ms": 3.5, "color": colours[i % len(colours)]}
            ys = [p[1] if not logy or p[1] > 0 else float("nan") for p in pts]  # no error: nothing to draw on log axes
            line, = ax.plot([p[0] for p in pts], ys, marker="o", label=lab,
                            ls=("-", "--", "-.", ":")[(i // len(colours)) % 4], **style)
            system_colour.setdefault(lab.split(" ")[0], line.get_color())
            band = [p for p in pts if p[2] == p[2] and p[3] == p[3] and (not logy or p[3] > 0)]
            if band:
                lo = [p[2] if not logy or p[2] > 0 else p[3] / 10 for p in band]  # a zero lower end on log axes
                ax.fill_between([p[0] for p in band], lo, [p[3] for p in band], color=line.get_color(), alpha=0.15,
                                lw=0)
        if logy:
            ax.set_yscale("log")
        floor = min((p[1] for pts in groups.values() for p in pts if p[1] > 0), default=None)
        _reference_lines(ax, rows, metric, spec, x, system_colour, floor / 100 if logy and floor else None)
        ax.set_xlabel(axis_label(x))
        ax.set_ylabel(axis_label(metric))
        ax.set_title(spec.get("title") or metric)
        ax.grid(True, which="both", alpha=0.3)
        if len(groups) > 6:
            ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), ncol=2 if len(groups) > 20 else 1)
        else:
            ax.legend(fontsize=7)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110)
        plt.close(fig)
        path = out_dir / f"{spec.get('name') or metric}.png"
        atomic_write(path, buf.getvalue())
        written.append(path)
    return written


def _reference_lines(ax, rows, metric, spec, x, system_colour, floor: float | None = None) -> None:
    """Dashed ``<metric>_normal_approx`` curves of the plotted systems (one per system and input), drawn down
    to ``floor`` (two decades under the smallest simulated value on log axes)."""
    ref = [r for r in _select(rows, metric + REF_SUFFIX, spec) if _num(r.get(x))]
    curves: dict[tuple, list] = {}
    for r in ref:
        v = float(r["value"])
        curves.setdefault((str(r["system"]), str(r.get("input", ""))), []).append(
            (float(r[x]), v if floor is None or v >= floor else float("nan")))
    for (system, inp), pts in curves.items():
        pts.sort()
        ax.plot([p[0] for p in pts], [p[1] for p in pts], ls="--" if inp != "gaussian" else ":", lw=1.2,
                color=system_colour.get(system, "grey"), label=f"{system} normal approx. ({inp})")


def plot_path(target: str | Path) -> list[Path]:
    """``linksim plot DIR_OR_CSV``: re-plot from a results.csv (uses run.json's plot specs if present)."""
    import json

    from .errors import UserError

    p = Path(target)
    csv_path = p / "results.csv" if p.is_dir() else p
    if not csv_path.is_file():
        raise UserError("no results.csv found", str(csv_path))
    import csv

    try:
        rows = read_csv(csv_path)
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise UserError(f"cannot read it as a results.csv ({type(e).__name__})", str(csv_path)) from None
    if not rows or "metric" not in rows[0] or any("system" not in r or "value" not in r for r in rows):
        raise UserError("not a linksim results.csv (needs 'system', 'metric' and 'value' columns)", str(csv_path))
    specs, sweep_vars = None, []
    info = csv_path.parent / "run.json"
    header = list(rows[0].keys())
    if info.is_file():
        try:
            resolved = json.loads(info.read_text()).get("resolved_scenario", {})
            specs = resolved.get("plots")
            sweep_vars = list(resolved.get("sweep", {}))
            from .scenario import PlotCfg

            specs = [PlotCfg.model_validate(x).model_dump() for x in specs] if specs else None
        except Exception as e:  # a damaged run.json: plot every metric the default way
            print(f"linksim: warning: {info}: ignored ({type(e).__name__}); default plots", file=sys.stderr)
            specs, sweep_vars = None, []
    sweep_vars += [c for c in header if c not in BASE_COLUMNS + STAT_COLUMNS and c not in sweep_vars]
    return plot_rows(rows, csv_path.parent, sweep_vars, specs)
