"""Error-count stopping of sweep points (``stop:`` in a system) and sweep-level early stop.

A point streams test batches until the sink that counts errors for ``stop.metric`` (``Block.error_counts``)
has ``target_errors`` of them and at least ``min_samples`` samples ran, or until ``max_samples`` samples
(or the dataset's test split) are used up. The decision is taken after each batch, so for a given seed and
batch size the same batches run and the CSV is identical.

``early_stop: <sweep variable>``: a point that ends on ``max_samples`` with zero errors makes the points of
larger values of that variable (all other sweep variables equal) be skipped; they appear in results.csv as
one row of the stop metric with an empty value, ``n`` = 0 and ``stopped_by = early_stop``, and in run.json
under ``early_stopped``. The decision only uses finished rows, so it is the same whether points ran locally,
on Ray, or were resumed.
"""
from __future__ import annotations

from .errors import UserError

def check_stop(cfg, sname: str, sweep: dict, where: str) -> None:
    """Static checks of ``systems.<sname>.stop`` (before any graph is built)."""
    sys_ = cfg.systems[sname]
    st = sys_.stop
    if st is None:
        return
    key = f"{where}: systems.{sname}.stop"
    if st.target_errors <= 0:
        raise UserError(f"must be a positive number of errors, got {st.target_errors}", f"{key}.target_errors")
    if st.max_samples <= 0:
        raise UserError(f"must be a positive number of samples, got {st.max_samples}", f"{key}.max_samples")
    if st.min_samples < 0:
        raise UserError(f"must be >= 0, got {st.min_samples}", f"{key}.min_samples")
    if st.max_samples < st.min_samples:
        raise UserError(f"max_samples ({st.max_samples}) is smaller than min_samples ({st.min_samples})",
                        f"{key}.max_samples")
    if sys_.samples is not None:
        raise UserError("'samples' and 'stop' exclude each other (stop.max_samples caps the samples)",
                        f"{where}: systems.{sname}.samples")
    if st.early_stop is not None and st.early_stop not in sweep:
        known = ", ".join(sweep) or "none"
        raise UserError(f"'{st.early_stop}' is not a sweep variable of system '{sname}' (sweep variables: {known})",
                        f"{key}.early_stop")
    if st.early_stop is not None:
        bad = [v for v in sweep[st.early_stop] if isinstance(v, bool) or not isinstance(v, (int, float))]
        if bad:
            raise UserError(f"early stop needs a numeric sweep variable; '{st.early_stop}' has {bad[0]!r}",
                            f"{key}.early_stop")


def stop_sinks(graph, metric: str, key: str) -> list:
    """The sinks of a graph that count errors for ``metric``; UserError naming ``key`` if there is none."""
    found, known = [], []
    for blk in graph.blocks.values():
        if blk.is_sink:
            blk.reset()
            counts = blk.error_counts()
            known += [m for m in counts if m not in known]
            if metric in counts:
                found.append(blk)
    if not found:
        raise UserError(f"no metric block of this system counts errors for '{metric}' (it can stop on: "
                        f"{', '.join(known) or 'nothing'})", key)
    return found


class StopRule:
    """The per-batch decision for one sweep point; ``reason`` says why it stopped."""

    def __init__(self, st, sinks: list, limit: int):
        self.st = st
        self.sinks = sinks
        self.limit = limit  # min(max_samples, dataset size)
        self.reason: str | None = None

    def errors(self) -> int:
        # several sinks counting the same metric (e.g. per scheme): the point stops when all have enough
        return min(int(s.error_counts()[self.st.metric]) for s in self.sinks)

    def __call__(self, samples: int) -> bool:
        if samples >= self.limit:
            self.reason = "max_samples" if self.limit >= self.st.max_samples else "dataset"
            return True
        if samples >= self.st.min_samples and self.errors() >= self.st.target_errors:
            self.reason = "target_errors"
            return True
        return False


def _other(point: dict, var: str) -> tuple:
    return tuple(sorted((k, str(v)) for k, v in point.items() if k != var))


def early_stop_cause(st, point: dict, finished: list[tuple[dict, list[dict]]]) -> dict | None:
    """The finished point (of the same system) that makes ``point`` skipped, if any: a point with a smaller
    value of ``st.early_stop``, the other sweep variables equal, that ended on max_samples with no error."""
    if st is None or st.early_stop is None:
        return None
    var = st.early_stop
    for prev, rows in finished:
        if _other(prev, var) != _other(point, var) or not float(prev[var]) < float(point[var]):
            continue
        mine = [r for r in rows if r.get("metric") == st.metric]
        if mine and all(r.get("stopped_by") == "max_samples" and r.get("errors") == 0 for r in mine):
            return prev
    return None


def skipped_rows(sname: str, point: dict, st) -> list[dict]:
    """The row that records a point skipped by early stop."""
    return [{"system": sname, **point, "metric": st.metric, "value": float("nan"), "n": 0, "errors": 0,
             "samples": 0, "stopped_by": "early_stop"}]


def apply_early_stop(cfg, order: list[tuple[str, dict, str]], done: dict) -> list[dict]:
    """Replace the rows of points skipped by early stop (in place in ``done``); returns what run.json records.

    Points are visited per system in increasing order of the early-stop variable, so the decision for a
    point depends only on points of smaller values (the same whether they ran locally, on Ray or resumed)."""
    skipped = []
    finished: dict[str, list] = {}
    for sname, point, fp in sorted(order, key=lambda o: _sort_key(cfg, o)):
        st = cfg.systems[sname].stop
        cause = early_stop_cause(st, point, finished.setdefault(sname, []))
        if cause is not None:
            done[fp] = skipped_rows(sname, point, st)
            skipped.append({"system": sname, "point": point, "after": cause})
        elif fp in done:
            finished[sname].append((point, done[fp]))
    return skipped


def _sort_key(cfg, o):
    sname, point, _ = o
    st = cfg.systems[sname].stop
    names = list(cfg.systems)
    if st is None or st.early_stop is None:
        return (names.index(sname), 0.0)
    return (names.index(sname), float(point[st.early_stop]))


def execution_order(cfg, order: list) -> list:
    """``order`` with each early-stopping system's points by increasing early-stop variable (stable)."""
    return sorted(order, key=lambda o: _sort_key(cfg, o))
