"""The one training loop every trainable block uses.

A block supplies its *step* (the loss of one batch, given the batch's sample indices and the loop's random
generator) and its optimiser; the loop owns everything else, the same way for every block:

- an isolated RNG: one ``torch.Generator`` seeded by the block's seed draws the shuffling (and whatever the
  step draws: augmentations, training-channel noise), and the global torch RNG is forked for the duration, so
  training neither depends on nor disturbs what ran before;
- epochs of shuffled mini-batches (``drop_last``: full batches only, when there is more than one batch);
- early stopping on the epoch's mean loss (``patience`` epochs without improving by ``min_delta``);
- SIGINT/SIGTERM honoured at every batch boundary (:mod:`linksim.interrupt`);
- a NaN/inf check after every batch: a diverging loss is a :class:`~linksim.errors.UserError` (exit 2) naming
  the block's YAML key and the epoch;
- an optional wall-clock cap (``max_seconds``), a safety net only: when it fires, results depend on the
  machine's speed, so a warning is printed and run.json says ``stopped_by: time_cap``;
- progress: a bar per block on a terminal; otherwise one line per trained block (see :class:`Progress`);
- the summary that goes into run.json (``epochs``, ``stopped_by`` = epochs | patience | time_cap | a reason
  the block's ``epoch_end`` gave, ``final_loss``, ``seconds``, ...).
"""
from __future__ import annotations

import contextlib
import math
import sys
import time
from typing import Any, Callable, Iterable

import torch

from .errors import UserError
from .interrupt import check_interrupt

STOPPED_BY = ("epochs", "patience", "time_cap")


class EarlyStopper:
    """Stop when the monitored loss has not improved by more than ``min_delta`` for ``patience`` steps.

    ``step(loss)`` returns True when training should stop; ``best`` / ``best_step`` / ``bad_steps`` track state.
    """

    def __init__(self, patience: int = 5, min_delta: float = 0.0):
        if patience < 1:
            raise ValueError("patience must be >= 1")
        self.patience, self.min_delta = int(patience), float(min_delta)
        self.best = math.inf
        self.best_step = -1
        self.bad_steps = 0
        self.steps = 0

    def step(self, loss: float) -> bool:
        loss = float(loss)
        if loss < self.best - self.min_delta:
            self.best, self.best_step, self.bad_steps = loss, self.steps, 0
        else:
            self.bad_steps += 1
        self.steps += 1
        return self.bad_steps >= self.patience


def warn(msg: str) -> None:
    print(f"linksim: warning: {msg}", file=sys.stderr, flush=True)


class Progress:
    """Training progress of one block: a tqdm bar (one step per epoch) on a terminal, else nothing per epoch
    (the engine prints one line per trained block, see :func:`linksim.graph.Graph.train`)."""

    def __init__(self, enabled: bool, total: int, desc: str):
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=desc, unit="ep", leave=False, file=sys.stderr)

    def epoch(self, info: dict) -> None:
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{info['loss']:.4f}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _value(x: Any) -> float:
    return float(x.detach()) if isinstance(x, torch.Tensor) else float(x)


def fit(step: Callable[[torch.Tensor, torch.Generator], Any], n: int, *, optimizer: torch.optim.Optimizer | None,
        epochs: int, batch_size: int, seed: int, patience: int | None = None, min_delta: float = 0.0,
        max_seconds: float | None = None, drop_last: bool = True, scheduler: Any = None,
        after_step: Callable[[], None] | None = None,
        epoch_end: Callable[[int, dict], str | None] | None = None,
        modules: Iterable[torch.nn.Module] = (), generator: torch.Generator | None = None,
        where: str | None = None, name: str = "", progress: bool = False,
        weighted: bool = False, threads: int | None = None) -> dict:
    """Train with ``step`` for at most ``epochs`` passes over ``n`` samples; return the summary.

    ``step(idx, gen)`` computes the loss of the batch of sample indices ``idx`` (a CPU ``int64`` tensor) and
    returns it as a scalar tensor, or a dict with the tensor under ``"loss"`` and other per-batch figures
    (tensors or floats, averaged per epoch into the summary's ``history``). The loop does
    ``zero_grad / backward / optimizer.step`` (then ``scheduler.step()`` and ``after_step()`` per batch);
    with ``optimizer=None`` the step does its own update. ``epoch_end(epoch, info)`` may return a reason to
    stop (e.g. ``"collapsed"``). ``weighted``: the epoch loss weights batches by size (else the plain mean
    over batches). ``modules`` are put in train mode for the loop and in eval mode afterwards. ``threads``: torch
    intra-op threads while the loop runs (1 for small models such as linear classifiers: their kernels are too
    small to share, and on a busy machine a second spinning thread made a 6000-sample classifier 9x slower; it
    also makes their float round-off independent of the machine's core count).
    """
    if n <= 0:
        raise UserError("no training samples", where)
    bs = min(int(batch_size), n)
    nb = n // bs if drop_last else -(-n // bs)
    gen = generator if generator is not None else torch.Generator().manual_seed(int(seed))
    stopper = EarlyStopper(patience, min_delta) if patience else None
    history: dict[str, list[float]] = {}
    stopped_by = "epochs"
    bar = Progress(progress, int(epochs), f"train {name}")
    modules = list(modules)
    for m in modules:
        m.train()
    t0 = time.perf_counter()
    saved_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(int(threads))
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            for epoch in range(1, int(epochs) + 1):
                perm = torch.randperm(n, generator=gen)
                sums: dict[str, float] = {}
                weight = 0
                for k in range(nb):
                    check_interrupt()  # SIGINT/SIGTERM stop a long training at a batch boundary too
                    idx = perm[k * bs:(k + 1) * bs]
                    out = step(idx, gen)
                    loss = out["loss"] if isinstance(out, dict) else out
                    if optimizer is not None:
                        optimizer.zero_grad(set_to_none=True)
                        loss.backward()
                        optimizer.step()
                    if scheduler is not None:
                        scheduler.step()
                    if after_step is not None:
                        after_step()
                    lv = _value(loss)
                    if not math.isfinite(lv):
                        raise UserError(f"training diverged: loss {lv} in epoch {epoch} (batch {k + 1}); lower "
                                        "the learning rate or the loss weights", where or name or None)
                    w = len(idx) if weighted else 1
                    weight += w
                    figs = {"loss": lv, **({k2: _value(v) for k2, v in out.items() if k2 != "loss"}
                                           if isinstance(out, dict) else {})}
                    for key, v in figs.items():
                        sums[key] = sums.get(key, 0.0) + v * w
                    if max_seconds is not None and time.perf_counter() - t0 >= max_seconds:
                        stopped_by = "time_cap"
                        break
                if not weight:
                    break
                info = {key: v / weight for key, v in sums.items()}
                for key, v in info.items():
                    history.setdefault(key, []).append(v)
                bar.epoch(info)
                if stopped_by == "time_cap":
                    break
                if epoch_end is not None:
                    reason = epoch_end(epoch, info)
                    if reason:
                        stopped_by = reason
                        break
                if stopper is not None and stopper.step(info["loss"]):
                    stopped_by = "patience"
                    break
    finally:
        if threads is not None:
            torch.set_num_threads(saved_threads)
        bar.close()
        for m in modules:
            m.eval()
    seconds = time.perf_counter() - t0
    losses = history.get("loss", [])
    if stopped_by == "time_cap":
        warn(f"{where or name}: training stopped on its wall-clock cap (max_seconds = {max_seconds}) after "
             f"{len(losses)} epoch(s) of {epochs}: the result depends on this machine's speed; raise max_seconds "
             "or lower epochs")
    return {"epochs": len(losses), "stopped_by": stopped_by, "final_loss": losses[-1] if losses else float("nan"),
            "losses": losses, "history": history, "batch_size": bs, "seconds": seconds}


def record(ctx, name: str, summary: dict, **extra) -> dict:
    """The run.json entry of a trained block: the loop's summary without the per-epoch history."""
    entry = {"epochs": int(summary["epochs"]), "stopped_by": summary["stopped_by"],
             "final_loss": round(float(summary["final_loss"]), 6), **extra,
             "seconds": round(float(summary["seconds"]), 1)}
    if ctx is not None:
        ctx.record(name, entry)
    return entry


def block_where(ctx, name: str) -> str:
    """The YAML key of the block being trained (set by the engine), for error messages."""
    key = getattr(ctx, "training_key", None) if ctx is not None else None
    return key or name


@contextlib.contextmanager
def isolated_rng(seed: int):
    """Fork the global torch RNG and seed it (model initialisation that must not disturb global state)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        yield
