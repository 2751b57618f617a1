"""Runs a scenario: validate every system at every sweep point, then train, evaluate, persist, plot."""
from __future__ import annotations

import math
import sys
import time
from pathlib import Path

from .context import (
    RunContext,
    WeightCache,
    default_cache_dir,
    derive_seed,
    reseed,
    resolve_device,
)
from .derive import check_envelopes, check_normal_approx, derived_rows
from .errors import UserError
from .graph import Graph, _digest
from .heap import release_free_heap
from .interrupt import Interrupted, check_interrupt, graceful
from .results import (
    BASE_COLUMNS,
    STAT_COLUMNS,
    PointStore,
    config_fingerprint,
    prepare_out,
    read_csv,
    run_info,
    write_csv,
    write_json,
)
from .stopping import StopRule, apply_early_stop, check_stop, early_stop_cause, execution_order, stop_sinks
from .composite import used_composites
from .scenario import (
    ScenarioCfg,
    load_scenario,
    sweep_points,
    system_nodes,
    system_sweep,
)


RESERVED = set(BASE_COLUMNS + STAT_COLUMNS)  # row keys a sweep variable would overwrite


def raw_resolved(cfg: ScenarioCfg) -> dict:
    """The validated scenario as plain data (what a remote worker rebuilds the plan from)."""
    return cfg.model_dump(mode="json")


BATCH_MEMORY_BUDGET = 8 * 2**30  # bytes of port tensors per batch


class Plan:
    """The validated work of a scenario: for each system, its sweep variables and points."""

    def __init__(self, cfg: ScenarioCfg, where: str):
        self.cfg = cfg
        self.where = where
        self.systems: dict[str, tuple[dict, list[dict]]] = {}
        for sname in cfg.systems:
            sweep = system_sweep(cfg, sname, where)
            for var in sweep:
                if var in RESERVED:
                    key = f"systems.{sname}.sweep.{var}" if var in cfg.systems[sname].sweep else f"sweep.{var}"
                    raise UserError(f"'{var}' is a results.csv column; give the sweep variable another name",
                                    f"{where}: {key}")
            check_stop(cfg, sname, sweep, where)
            self.systems[sname] = (sweep, sweep_points(sweep))
        self.sweep_vars: list[str] = []
        for sweep, _ in self.systems.values():
            for v in sweep:
                if v not in self.sweep_vars:
                    self.sweep_vars.append(v)

    def graph(self, sname: str, point: dict, ctx: RunContext, nodes: list | None = None) -> Graph:
        ctx.point = point
        nodes = system_nodes(self.cfg, sname, point) if nodes is None else nodes
        return Graph(nodes, ctx, f"{self.where}: ")

    def validate(self, ctx: RunContext) -> int:
        """Build every graph at every sweep point (no training, no data pass). Returns graphs built."""
        check_envelopes(self.cfg, self.where)
        check_normal_approx(self.cfg, self.where)
        n = 0
        for sname, (_, points) in self.systems.items():
            seen = set()
            for point in points:
                nodes = system_nodes(self.cfg, sname, point)
                sig = _digest([(x.type, x.params, x.inputs, x.repeat, x.copies) for x in nodes])
                if sig in seen:
                    continue
                seen.add(sig)
                graph = self.graph(sname, point, ctx, nodes)
                self._check_batch_memory(sname, graph)
                st = self.cfg.systems[sname].stop
                if st is not None:
                    stop_sinks(graph, st.metric, f"{self.where}: systems.{sname}.stop.metric")
                n += 1
        return n

    def _check_batch_memory(self, sname: str, graph: Graph) -> None:
        """Memory is bounded by the batch: refuse up front a batch whose port tensors alone exceed the budget."""
        bs = self.cfg.systems[sname].batch_size or self.cfg.data.batch_size
        per_sample, biggest = 0, ("", 0)
        for name, blk in graph.blocks.items():
            for port, spec in blk.out_specs.items():
                b = spec.size * (8 if spec.kind in ("complex", "label") else 4)
                per_sample += b
                if b > biggest[1]:
                    biggest = (f"{name}.{port} {spec}", b)
        if per_sample * bs > BATCH_MEMORY_BUDGET:
            key = f"systems.{sname}.batch_size" if self.cfg.systems[sname].batch_size else "data.batch_size"
            raise UserError(f"one batch of {bs} samples would need about {per_sample * bs / 2**30:.3g} GiB of port "
                            f"data (largest: {biggest[0]}); lower the batch size or the sizes",
                            f"{self.where}: {key}")


def make_context(cfg: ScenarioCfg, where: str, device: str = "auto", quick: bool = False,
                 progress: bool | None = None, cache_dir: str | Path | None = "default") -> RunContext:
    lines = False
    if progress is None:  # bars on a terminal, else one line per trained block and finished sweep point
        progress = sys.stderr.isatty()
        lines = not progress
    cache = WeightCache(default_cache_dir() if cache_dir == "default" else cache_dir)
    return RunContext(device=resolve_device(device), seed=cfg.seed, data=cfg.data, quick=quick, cache=cache,
                      progress=progress, lines=lines, where=where)


def validate_scenario(path: str, overrides=(), quick: bool = False) -> tuple[Plan, int]:
    cfg, _ = load_scenario(path, overrides, quick)
    return validate_loaded(cfg, str(path), quick)


def validate_loaded(cfg: ScenarioCfg, where: str, quick: bool = False) -> tuple[Plan, int]:
    """Build every graph of a loaded scenario at every sweep point (nothing runs); ``where`` names it."""
    plan = Plan(cfg, where)
    ctx = make_context(cfg, where, device="cpu", quick=quick, progress=False, cache_dir=None)
    return plan, plan.validate(ctx)


def _tqdm(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="smp", leave=False, disable=not enabled, file=sys.stderr)


def train_point(plan: Plan, sname: str, point: dict, ctx: RunContext) -> Graph:
    """The graph of one sweep point with every trainable block fitted or loaded from the weight cache."""
    cfg = plan.cfg
    graph = plan.graph(sname, point, ctx)
    bs = cfg.systems[sname].batch_size or cfg.data.batch_size
    reseed(derive_seed(cfg.seed, "train"))
    # what the training passes see: the training split and its batching (not the test-set size)
    data_key = [cfg.data.model_dump(exclude={"test_samples", "batch_size"}), bs, cfg.seed]
    ctx.system = sname
    graph.train(ctx.cache, data_key, cfg.data.train_samples, bs, cfg.seed, progress=ctx.log)
    return graph


def run_point(plan: Plan, sname: str, point: dict, ctx: RunContext) -> list[dict]:
    cfg = plan.cfg
    sys_cfg = cfg.systems[sname]
    bs = sys_cfg.batch_size or cfg.data.batch_size
    graph = train_point(plan, sname, point, ctx)
    reseed(derive_seed(cfg.seed, sname, sorted(point.items())))
    st = sys_cfg.stop
    n = graph.num_samples("test", st.max_samples if st is not None else sys_cfg.samples)
    if st is not None:
        n = min(n, st.max_samples)
    if sys_cfg.test_samples is not None:
        n = min(n, sys_cfg.test_samples)
    rule = None
    if st is not None:
        rule = StopRule(st, stop_sinks(graph, st.metric, f"{plan.where}: systems.{sname}.stop.metric"), n)
    desc = f"{sname} " + " ".join(f"{k}={v}" for k, v in point.items())
    t_eval = time.perf_counter()
    with _tqdm(n, desc, ctx.progress) as bar:
        used = graph.evaluate(n, bs, bar, rule)
    ctx.timing()["evaluation_s"] += time.perf_counter() - t_eval
    stop_cols = {"samples": used, "stopped_by": rule.reason} if rule is not None else {}
    rows = []
    for blk in graph.blocks.values():
        if blk.is_sink:
            for m in blk.compute():
                rows.append({"system": sname, **point, **m.labels, "metric": m.name, "value": float(m.value),
                             "n": int(m.n), **stat_columns(m), **stop_cols})
    # per-sample figures; "key|label" -> rows with scheme=label (several schemes in one graph)
    by_label: dict[str, dict[str, float]] = {}
    for key, v in graph.reports().items():
        metric, _, label = key.partition("|")
        by_label.setdefault(label, {})[metric] = v
    shared = by_label.get("", {})
    for label, rep in by_label.items():
        rep = {**{k: v for k, v in shared.items() if k in ("source_dims",)}, **rep}
        tag = {"system": sname, **point, **({"scheme": label} if label else {})}
        # OFDM resource accounting (issue 13): overhead_*_per_sample, ofdm_*_per_sample rows next to channel uses
        extra = tuple(k for k in rep if k.startswith(("overhead_", "ofdm_")))
        for key in ("bits_per_sample", "channel_uses_per_sample") + extra:
            if key in rep:
                rows.append({**tag, "metric": key, "value": rep[key], "n": used})
        if rep.get("nodes") and "bits_per_sample" in rep:
            rows.append({**tag, "metric": "bits_per_node", "value": rep["bits_per_sample"] / rep["nodes"], "n": used})
        if rep.get("channel_uses_per_sample") and rep.get("source_dims"):
            rows.append({**tag, "metric": "bandwidth_ratio",
                         "value": rep["channel_uses_per_sample"] / rep["source_dims"], "n": used})
    for r in rows:
        if isinstance(r["value"], float) and math.isinf(r["value"]):
            r["value"] = float("nan")
    return rows


def peak_rss_mb() -> float | None:
    """Peak resident memory of this process in MiB (None where the platform does not say)."""
    try:
        import resource

        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    except (ImportError, OSError):
        return None
    return round(kb / (1024 * 1024) if sys.platform == "darwin" else kb / 1024, 1)


def resources(ctx: RunContext) -> dict:
    """run.json: peak RSS and the seconds spent training (per block type) and evaluating."""
    t = ctx.timing()
    return {"peak_rss_mb": peak_rss_mb(),
            "seconds": {"training": {k: round(v, 1) for k, v in sorted(t["training_s"].items())},
                        "evaluation": round(t["evaluation_s"], 1)}}


def stop_info(cfg, early: list) -> dict:
    """run.json: the stop rules of the systems that have one and the points early stop skipped."""
    rules = {s: c.stop.model_dump() for s, c in cfg.systems.items() if c.stop is not None}
    return {**({"stop_rules": rules} if rules else {}), **({"early_stopped": early} if early else {})}


def stat_columns(m) -> dict:
    """``errors`` (rates) and the 95 % interval ``ci_low``/``ci_high`` of a metric row (linksim.stats)."""
    if m.stat is None:
        return {}
    lo, hi = m.stat.interval()
    out = {"errors": int(m.stat.errors)} if hasattr(m.stat, "errors") else {}
    return {**out, "ci_low": lo, "ci_high": hi}


def _remote_point(raw: dict, where: str, device: str, quick: bool, cache_dir, sname: str, point: dict):
    """One sweep point in a Ray worker: rebuild the plan from the resolved scenario, run, return rows."""
    import torch

    from .scenario import ScenarioCfg

    torch.set_num_threads(1)
    cfg = ScenarioCfg.model_validate(raw)
    plan = Plan(cfg, where)
    ctx = make_context(cfg, where, device, quick, False, cache_dir)
    return run_point(plan, sname, point, ctx)


def _run_ray(jobs, raw, where, ctx, quick, cache_dir, address, store, done: dict) -> None:
    """Sweep points as Ray tasks; each finished point is persisted as soon as it returns."""
    try:
        import ray
    except ImportError:
        raise UserError("--executor ray needs Ray: pip install 'linksim[ray]'") from None
    started_here = not ray.is_initialized()
    if started_here:
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True,
                     **({} if address else {"_node_ip_address": "127.0.0.1"}))
        except Exception as e:  # Ray raises ConnectionError, ValueError, RuntimeError... for a bad address
            raise UserError(f"cannot start or reach Ray: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}",
                            f"--address {address}" if address else "--executor ray") from None
    try:
        task = ray.remote(_remote_point)
        refs = {task.remote(raw, where, ctx.device, quick, cache_dir, s, p): (s, p, fp) for s, p, fp in jobs}
        pending = list(refs)
        while pending:
            check_interrupt()
            ready, pending = ray.wait(pending, num_returns=1, timeout=0.5)
            if not ready:
                continue
            s, p, fp = refs[ready[0]]
            rows = ray.get(ready[0])
            store.save(s, fp, rows)
            done[fp] = rows
            ctx.log(f"{s} {p} (ray)")
    finally:
        if started_here:
            ray.shutdown()


def run_scenario(path: str, out_dir: str | Path, overrides=(), quick: bool = False, device: str = "auto",
                 seed: int | None = None, progress: bool | None = None, cache_dir="default",
                 plots: bool = True, executor: str = "local", address: str | None = None,
                 overwrite: bool = False) -> Path:
    """Validate, then run every sweep point not already in ``out_dir``. A folder holding results of another
    configuration is refused (UserError) unless ``overwrite``; SIGINT/SIGTERM stop at a batch boundary with
    every finished point kept (:class:`~linksim.interrupt.Interrupted`)."""
    cfg, raw = load_scenario(path, overrides, quick, seed)
    run_loaded(cfg, raw, str(path), out_dir, overrides, quick, device, progress, cache_dir, plots, executor,
               address, overwrite)
    return Path(out_dir)


def run_loaded(cfg: ScenarioCfg, raw: dict, where: str, out_dir: str | Path | None, overrides=(),
               quick: bool = False, device: str = "auto", progress: bool | None = None, cache_dir="default",
               plots: bool = True, executor: str = "local", address: str | None = None,
               overwrite: bool = False, command: str | None = None) -> tuple[list[dict], list[str]]:
    """Run a loaded scenario (``where`` names it in errors). With ``out_dir``: as :func:`run_scenario` (the
    folder's files, resume, graceful interrupt). With ``out_dir=None`` nothing is written (no results, no
    points; the weight cache is still used unless ``cache_dir`` is None) and every point runs. Returns the
    results.csv rows and the sweep variables (its column order: :func:`linksim.results.columns_for`)."""
    if out_dir is None:
        return _run_scenario(cfg, raw, where, None, overrides, quick, device, progress, cache_dir, plots,
                             executor, address, overwrite, command)
    with graceful():
        try:
            return _run_scenario(cfg, raw, where, out_dir, overrides, quick, device, progress, cache_dir, plots,
                                 executor, address, overwrite, command)
        except Interrupted as e:
            done = len(list(PointStore(Path(out_dir)).dir.glob("*.json")))
            e.detail = f"{done} finished sweep point(s) kept in {out_dir}"
            raise


class _NoStore:
    """The point store of a run that writes nothing (``out_dir=None``): nothing to resume, nothing kept."""

    def load(self, system: str, fp: str) -> None:
        return None

    def save(self, system: str, fp: str, rows: list[dict]) -> None:
        pass


def point_config(cfg: ScenarioCfg, sname: str) -> dict:
    """A system's configuration as it enters its points' fingerprints. Settings left unset since they were
    added (``stop``, ``vars``) are left out, so points written before them still resume."""
    unset = {k for k in ("stop", "vars") if not getattr(cfg.systems[sname], k)}
    out = cfg.systems[sname].model_dump(mode="json", exclude=unset or None)
    comps = used_composites(cfg.systems[sname].blocks, cfg.composites)
    if comps:  # the definitions it uses decide its numbers too
        out["composites"] = comps
    blocks = out.get("blocks", {})
    for b in blocks.values():  # per_copy enters only where it is used (points written before it resume)
        if not b.get("per_copy"):
            b.pop("per_copy", None)
    return out


def default_out(cfg: ScenarioCfg, quick: bool) -> Path:
    """results/<name>, or results/<name>/quick for a --quick run (never the full run's folder)."""
    base = Path("results") / cfg.name
    return base / "quick" if quick else base


def _run_scenario(cfg, raw, where, out_dir, overrides, quick, device, progress, cache_dir, plots, executor,
                  address, overwrite, command=None) -> tuple[list[dict], list[str]]:
    t0 = time.time()
    plan = Plan(cfg, where)
    ctx = make_context(cfg, where, device, quick, progress, cache_dir)
    plan.validate(ctx)  # every graph at every point before any work
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        prepare_out(out, config_fingerprint(raw, quick), where, quick, overwrite)
    store = PointStore(out) if out is not None else _NoStore()
    all_rows: list[dict] = []
    resumed = 0
    order: list[tuple[str, dict, str]] = []
    done: dict[str, list[dict]] = {}
    for sname, (_, points) in plan.systems.items():
        sys_dump = point_config(cfg, sname)
        for point in points:
            fp = _digest([sys_dump, point, cfg.seed, cfg.data.model_dump(), quick])
            order.append((sname, point, fp))
            rows = store.load(sname, fp)
            if rows is not None:
                done[fp] = rows
                resumed += 1
    remote: list[tuple[str, dict, str]] = []
    trained: set[str] = set()
    to_run, ran, t_run = len(order) - resumed, 0, time.perf_counter()
    if resumed:
        ctx.say(f"{resumed} sweep point(s) resumed from {out / 'points'}; {to_run} to run")
    finished: dict[str, list] = {}
    for sname, point, fp in execution_order(cfg, order):
        if fp in done:
            finished.setdefault(sname, []).append((point, done[fp]))
            continue
        if early_stop_cause(cfg.systems[sname].stop, point, finished.get(sname, [])) is not None:
            continue  # skipped: recorded by apply_early_stop below
        st = cfg.systems[sname].stop
        if executor == "ray" and sname in trained and (st is None or st.early_stop is None):
            # weights are in the on-disk cache by now; early-stopping systems stay local and sequential
            # (which points run depends on the points before)
            remote.append((sname, point, fp))
            continue
        ctx.log(f"{sname} {point}")
        t_point = time.perf_counter()
        done[fp] = run_point(plan, sname, point, ctx)
        release_free_heap()
        store.save(sname, fp, done[fp])
        ran += 1
        elapsed = time.perf_counter() - t_run
        left = (elapsed / ran) * (to_run - ran)
        ctx.say(f"point {ran}/{to_run} {sname} " + " ".join(f"{k}={v}" for k, v in point.items())
                + f" done in {time.perf_counter() - t_point:.1f} s; about {left:.0f} s left")
        finished.setdefault(sname, []).append((point, done[fp]))
        trained.add(sname)
    if remote:
        if ctx.cache.root is None:
            raise UserError("--executor ray needs the weight cache (drop --no-cache)")
        _run_ray(remote, raw_resolved(cfg), where, ctx, quick, str(ctx.cache.root), address, store, done)
    early = apply_early_stop(cfg, order, done)
    for _, _, fp in order:
        all_rows.extend(done[fp])
    all_rows += derived_rows(cfg, all_rows)
    if out is None:
        return all_rows, plan.sweep_vars
    write_csv(out / "results.csv", all_rows, plan.sweep_vars)
    info = run_info(where, raw, cfg.seed, time.time() - t0,
                    {"device": ctx.device, "quick": quick, "overrides": list(overrides), "executor": executor,
                     "points_resumed": resumed, **stop_info(cfg, early),
                     "weight_cache": {"hits": ctx.cache.hits, "misses": ctx.cache.misses},
                     **resources(ctx), **ctx.shared.get("run_info", {}), **({"command": command} if command else {})})
    write_json(out / "run.json", info)
    if plots:
        from .plot import plot_rows

        # the figures are drawn from the rows of the results.csv just written: the same numbers, no other source
        plot_rows(read_csv(out / "results.csv"), out, plan.sweep_vars, [p.model_dump() for p in cfg.plots])
    return all_rows, plan.sweep_vars
