"""The code a block's trained weights come from, as a hash: part of the weight-cache key.

Without it, a change to a block's training code (its loss, model, optimiser, data handling) would silently
reuse weights trained by the old code. The hash covers the source of the module that defines the block class
and, transitively, every module of the same top-level package or of linksim that it imports (statically, also
inside functions: the lazy imports of ``fit`` count). Modules the block does not import (the runner, the CLI,
plots) do not change it. Comments, formatting and docstrings do not count: the hash is taken over the syntax
tree without docstrings.

Hand-written because joblib's ``Memory`` (the closest library) hashes one function's code, not the modules a
class's training reaches through imports.
"""
from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import inspect
import os
import sys
from pathlib import Path

__all__ = ["code_version", "module_closure"]


def _source_path(module: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError, AttributeError):
        return None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    return Path(spec.origin)


def _imports(tree: ast.AST, module: str, is_package: bool) -> list[str]:
    """Absolute names of everything ``tree`` imports (``from a import b`` yields ``a`` and ``a.b``)."""
    package = module if is_package else module.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[:len(parts) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            out += [base] + [f"{base}.{a.name}" for a in node.names]
    return out


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return tree


@functools.lru_cache(maxsize=None)
def _parsed(path: str, mtime_ns: int, module: str) -> tuple[str, tuple[str, ...]]:
    """(syntax-tree dump without docstrings, imported names) of one file; parsed again when the file changes."""
    tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    names = tuple(_imports(tree, module, Path(path).name == "__init__.py"))
    return ast.dump(_strip_docstrings(tree)), names


def module_closure(module: str, roots: tuple[str, ...] = ("linksim",)) -> dict[str, str]:
    """``{module: syntax-tree dump}`` of ``module`` and of the modules under ``roots`` it imports, transitively."""
    return {m: dump for m, (_, _, dump) in _closure(module, roots).items()}


def _closure(module: str, roots: tuple[str, ...]) -> dict[str, tuple[str, int, str]]:
    """``{module: (source file, its modification time when parsed, syntax-tree dump)}`` of
    :func:`module_closure`."""
    out: dict[str, tuple[str, int, str]] = {}
    todo = [module]
    while todo:
        m = todo.pop()
        if m in out:
            continue
        path = _source_path(m)
        if path is None:
            continue
        mtime = path.stat().st_mtime_ns
        dump, names = _parsed(str(path), mtime, m)
        out[m] = (str(path), mtime, dump)
        for n in names:
            if n.split(".")[0] in roots and n not in out:
                todo.append(_defining_module(n))
    return out


def _defining_module(name: str) -> str:
    """``name`` itself if it is a module; for ``package.attr`` (``from package import attr``, also when the
    package exports it lazily, as ``from linksim import Block`` does) the module that defines ``attr``."""
    if _source_path(name) is not None:
        return name
    parent, _, attr = name.rpartition(".")
    mod = sys.modules.get(parent)
    try:
        obj = getattr(mod, attr, None) if mod is not None else None
    except Exception:  # a lazy export that fails to load: the import itself would fail first
        obj = None
    return getattr(obj, "__module__", None) or name


_VERSIONS: dict[type, tuple[tuple, str]] = {}  # class -> ((file, mtime) of its closure, version)


def _stamps(files) -> tuple:
    try:
        return tuple((f, os.stat(f).st_mtime_ns) for f in files)
    except OSError:
        return ()


def code_version(cls: type) -> str:
    """Hash of the code behind ``cls`` (see the module docstring); '' when its source cannot be found.
    Remembered per class while none of its closure's files changes (a graph asks once per block and point)."""
    held = _VERSIONS.get(cls)
    if held is not None and held[0] and _stamps(f for f, _ in held[0]) == held[0]:
        return held[1]
    module = cls.__module__
    closure = _closure(module, tuple(sorted({"linksim", module.split(".")[0]})))
    dumps = {m: dump for m, (_, _, dump) in closure.items()}
    if module not in dumps:  # defined in __main__ or an interactive session: the class's own source
        try:
            dumps[module] = ast.dump(_strip_docstrings(ast.parse(inspect.getsource(cls))))
        except (OSError, TypeError):
            dumps = {}
    version = ""
    if dumps:
        h = hashlib.sha256()
        for name in sorted(dumps):
            h.update(name.encode())
            h.update(b"\0")
            h.update(dumps[name].encode())
            h.update(b"\0")
        version = h.hexdigest()[:20]
    _VERSIONS[cls] = (tuple((path, mtime) for path, mtime, _ in closure.values()), version)
    return version
