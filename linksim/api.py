"""The Python API: run, load and validate scenarios from scripts, notebooks and tests (README "Python API").

``scenario`` is a path (``str`` or ``os.PathLike``), YAML text (a ``str`` holding a line break, or starting
with ``{``), a ``dict`` of the same structure, or a scenario object returned by :func:`load`. Errors in it
raise :class:`linksim.errors.UserError`, whose message names the file (or ``<yaml>`` / ``<dict>``) and key,
exactly as the command line prints them. ``overrides`` are ``"dotted.key=value"`` strings (as ``--set``) or a
mapping ``{"dotted.key": value}`` of Python values.
"""
from __future__ import annotations

import os
import tempfile
import weakref
from pathlib import Path
from typing import Any, Mapping

from .errors import UserError

__all__ = ["run", "load", "validate"]


def run(scenario, out: str | os.PathLike | None = None, overrides=(), quick: bool = False,
        seed: int | None = None, *, device: str = "auto", cache: bool = True, plots: bool = True,
        overwrite: bool = False, progress: bool | None = None):
    """Validate and run a scenario; return a pandas DataFrame with the columns and rows of results.csv.

    With ``out`` the folder is written as ``linksim run --out`` writes it (results.csv, run.json, plots,
    points/ for resume; another configuration there needs ``overwrite=True``). With ``out=None`` no result
    file is written anywhere (not even results/<name>), and every sweep point runs. Trained weights still go
    through the weight cache (``LINKSIM_CACHE``) unless ``cache=False``."""
    import pandas as pd

    from .results import columns_for
    from .runner import run_loaded

    cfg, raw, where = _load(scenario, overrides, quick, seed)
    if out is not None and not str(out).strip():
        raise UserError("out is empty; name a folder or pass None")
    command = (f"linksim.run({where!r}, out={None if out is None else str(out)!r}, "
               f"overrides={_override_list(overrides)!r}, quick={quick!r}, seed={seed!r})")
    rows, sweep_vars = run_loaded(cfg, raw, where, out, _override_list(overrides), quick, device, progress,
                                  "default" if cache else None, plots, overwrite=overwrite, command=command)
    return pd.DataFrame.from_records(rows, columns=columns_for(rows, sweep_vars))


def load(scenario, overrides=(), quick: bool = False, seed: int | None = None):
    """Load and validate a scenario (every system at every sweep point, as ``linksim validate``); return the
    scenario object (:class:`linksim.scenario.ScenarioCfg`), which :func:`run` also accepts."""
    from .runner import validate_loaded

    cfg, _, where = _load(scenario, overrides, quick, seed)
    validate_loaded(cfg, where, quick)
    _ORIGINS[id(cfg)] = (weakref.ref(cfg), where)
    return cfg


# where each scenario object returned by load() came from (errors and run.json name that file when it is rerun)
_ORIGINS: dict[int, tuple[weakref.ref, str]] = {}


def validate(scenario, overrides=(), quick: bool = False, seed: int | None = None) -> None:
    """Raise :class:`~linksim.errors.UserError` naming the key unless the scenario validates."""
    load(scenario, overrides, quick, seed)


# ------------------------------------------------------------------------------------------- loading
def _override_list(overrides) -> list[str]:
    """``--set`` strings from a list of ``key=value`` strings or a mapping of keys to Python values."""
    if isinstance(overrides, str):
        raise UserError("overrides must be a list of 'dotted.key=value' strings or a dict, got one string")
    if isinstance(overrides, Mapping):
        return [f"{k}={_yaml_value(v)}" for k, v in overrides.items()]
    out = list(overrides)
    for item in out:
        if not isinstance(item, str):
            raise UserError(f"an override is a 'dotted.key=value' string, got {item!r}")
    return out


def _yaml_value(v: Any) -> str:
    """A Python value as the one-line YAML text ``--set`` parses back to the same value."""
    import yaml

    text = yaml.safe_dump(v, default_flow_style=True, width=2**31, allow_unicode=True)
    return text[:-5] if text.endswith("\n...\n") else text.rstrip("\n")


def _source(scenario) -> tuple[str | None, str | None, str]:
    """(path, YAML text, label naming it in errors): exactly one of path and text is set."""
    from .scenario import ScenarioCfg

    if isinstance(scenario, os.PathLike):
        return os.fspath(scenario), None, os.fspath(scenario)
    if isinstance(scenario, str):
        if "\n" in scenario or scenario.lstrip().startswith("{"):
            return None, scenario, "<yaml>"
        return scenario, None, scenario
    label = "<dict>"
    if isinstance(scenario, ScenarioCfg):
        ref, origin = _ORIGINS.get(id(scenario), (None, None))
        label = origin if ref is not None and ref() is scenario else "<dict>"
        scenario = scenario.model_dump(mode="json")
    if isinstance(scenario, Mapping):
        import yaml

        from .scenario import plain_data

        try:
            text = yaml.safe_dump(plain_data(dict(scenario), label), sort_keys=False, allow_unicode=True)
        except yaml.YAMLError as e:
            raise UserError(f"cannot be written as YAML: {e}", label) from None
        return None, text, label
    raise UserError(f"a scenario is a path, YAML text or a dict, got {type(scenario).__name__}")


def _load(scenario, overrides, quick: bool, seed: int | None):
    """(ScenarioCfg, resolved raw dict, label) of any accepted scenario form."""
    from .scenario import load_scenario

    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32):
        raise UserError(f"seed must be an integer from 0 to 2**32 - 1, got {seed!r}")
    sets = _override_list(overrides)
    path, text, label = _source(scenario)
    if path is not None:
        try:
            cfg, raw = load_scenario(path, sets, quick, seed)
        except UserError as e:
            raise _relabel(e, "--set", "override") from None
        return cfg, raw, label
    # YAML text and dicts go through the file reader (the same size, encoding and alias checks) via a
    # private temporary file; errors name ``label`` instead of that file.
    # ``include`` paths of YAML text or a dict are relative to the working folder (of a scenario object
    # from linksim.load: to its file's folder).
    with tempfile.TemporaryDirectory(prefix="linksim-api-") as tmp:
        f = Path(tmp) / "scenario.yaml"
        f.write_text(text, encoding="utf-8")
        try:
            base = Path(label).parent if label not in ("<yaml>", "<dict>") else Path.cwd()  # a loaded file's folder
            cfg, raw = load_scenario(str(f), sets, quick, seed, base=base)
        except UserError as e:
            raise _relabel(_relabel(e, str(f), label), "--set", "override") from None
    return cfg, raw, label


def _relabel(e: UserError, old: str, new: str) -> UserError:
    where = e.where.replace(old, new) if e.where else e.where
    msg = str(e)
    if e.where and msg.startswith(f"{e.where}: "):
        msg = msg[len(e.where) + 2:]
    return UserError(msg.replace(old, new), where)
