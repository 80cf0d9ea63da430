"""What a graded check cell runs: the exercise's check, loaded afresh from the package.

The graded versions of the notebooks (nbgrader's locked test cell, otter-grader's hidden
test) do not call the check by a name the notebook could have rebound; ``make assign``
writes::

    import importlib, vaelab.exercises.grading
    importlib.reload(vaelab.exercises.grading).grade(
        "vaelab.exercises.vae.check_vae_loss", my_vae_loss)

(``reload`` runs this file again, so a replaced ``grade`` is not used either.) ``grade``

1. refuses a name that is not one of the package's checks (``vaelab.exercises.<topic>.
   check_...``);
2. executes that module and the feedback module ``vaelab.exercises.core`` afresh from
   the package's files, so whatever the notebook assigned into them is not used;
3. verifies that the package's answers the check compares with (``vaelab.references``)
   are the package's own functions, not replacements;
4. reads the code this kernel ran (IPython's input history) for assignments into modules,
   ``setattr`` on a module, ``exec``/``eval``/``compile``, reaching into a caller's frames
   (``sys._getframe``, ``f_locals``: the check's locals hold the expected answer) and the
   like: a notebook that does any of it gets no graded check;
5. runs the check in graded mode (its feedback shows no expected value).

This holds against a student who rebinds names, calls the package's answer, or pastes a
printed value. Python code running in the kernel can still, deliberately, change what
any in-process check relies on (the import system, ``importlib.reload`` itself, torch or
NumPy through means the scan does not read); a grader that must hold against that runs
the check in another process.
"""

from __future__ import annotations

import ast
import importlib
import sys
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import Any

from vaelab import references

_CHECKS = "vaelab.exercises"
_NOT_CHECKS = {f"{_CHECKS}.core", f"{_CHECKS}.grading"}
_MISSING = object()


class GradingError(AssertionError):
    """The graded check did not run: the message says why (0 points, like a failed check)."""


def grade(check: str, *answer: Any) -> None:
    """Run the package's check ``check`` (its qualified name) on ``answer``, graded."""
    function = fresh_check(check)
    changes = tampering(_kernel_history())
    if changes:
        raise GradingError(
            f"{check}: not graded, because this notebook changes code that the check relies "
            f"on: {changes[0]}. Remove that line (and any like it) and run the notebook again.")
    function(*answer)


def fresh_check(check: str) -> Callable[..., None]:
    """The function ``check`` from a fresh execution of its module (graded mode on)."""
    if not isinstance(check, str):
        raise GradingError(f"a check is named by a string such as "
                           f"'{_CHECKS}.vae.check_vae_loss', got {check!r}")
    module_name, _, function_name = check.rpartition(".")
    if (not module_name.startswith(_CHECKS + ".") or module_name in _NOT_CHECKS
            or not function_name.startswith("check_")):
        raise GradingError(f"{check!r} is not one of the package's exercise checks "
                           f"({_CHECKS}.<topic>.check_...)")
    module = _fresh_module(module_name)
    function = module.__dict__.get(function_name)
    if not callable(function) or getattr(function, "__module__", None) != module_name:
        raise GradingError(f"{module_name} has no check named {function_name}")
    replaced = _replaced_answers(module)
    if replaced:
        raise GradingError(f"{check}: not graded, because {replaced[0]} in this kernel is not "
                           "the package's own function; restart the kernel and run the notebook "
                           "without replacing it")
    return function


def _fresh_module(module_name: str) -> ModuleType:
    """``module_name`` and ``vaelab.exercises.core`` executed again from their files; the
    modules this kernel already holds (and their package's attributes) are left as they are."""
    names = [f"{_CHECKS}.core", module_name]
    package = importlib.import_module(_CHECKS)
    saved = {name: sys.modules.pop(name, None) for name in names}
    attributes = {name: package.__dict__.get(name.rpartition(".")[2], _MISSING) for name in names}
    try:
        core = importlib.import_module(names[0])
        core._graded = True  # type: ignore[attr-defined]
        return importlib.import_module(module_name)
    finally:
        for name in names:
            sys.modules.pop(name, None)
            if saved[name] is not None:
                sys.modules[name] = saved[name]  # type: ignore[assignment]
            attr = name.rpartition(".")[2]
            if attributes[name] is _MISSING:
                package.__dict__.pop(attr, None)
            else:
                package.__dict__[attr] = attributes[name]


def _replaced_answers(module: ModuleType) -> list[str]:
    """Names in ``module`` that should be the package's answers (``@answers``) but are not."""
    own = {name.rpartition(".")[2]: (name, fn) for name, fn in references.registry_items()}
    replaced = []
    for name, value in module.__dict__.items():
        if name not in own or own[name][0] == f"{module.__name__}.{name}":
            continue  # not an answer, or one this fresh copy defines itself
        if value is not own[name][1]:
            replaced.append(own[name][0])
    return replaced


# ----------------------------------------------------------------------------- the scan


_DUNDERS = {"__code__", "__closure__", "__globals__", "__dict__", "__builtins__", "__defaults__",
            "__kwdefaults__", "cell_contents", "__class__",
            # reaching into the checker's frames (its locals hold the expected answer)
            "_getframe", "currentframe", "f_back", "f_locals", "f_globals", "tb_frame",
            "get_referrers", "get_objects"}
_DYNAMIC = {"exec", "eval", "compile", "setattr", "delattr", "__import__", "globals", "vars"}


def _kernel_history() -> list[str]:
    """The code cells this IPython kernel ran, in order (empty outside IPython)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None:
        return []
    # The history manager's own list: rebinding the name In in the notebook does not hide it.
    history = getattr(getattr(shell, "history_manager", None), "input_hist_parsed", None)
    if history is None:
        history = shell.user_ns.get("In", [])
    return [cell for cell in history if isinstance(cell, str)]


def _resolve(node: ast.expr, namespace: dict[str, Any]) -> Any:
    """The object a dotted name (``a.b.c``) refers to in ``namespace``, without calling
    anything; ``_MISSING`` if it is not a plain dotted name or does not resolve."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return _MISSING
    obj = namespace.get(node.id, _MISSING)
    if obj is _MISSING:
        obj = sys.modules.get(node.id, _MISSING)
    for part in reversed(parts):
        try:
            obj = object.__getattribute__(obj, part)
        except AttributeError:
            return _MISSING
    return obj


def _changes_module(target: ast.expr, namespace: dict[str, Any]) -> bool:
    if isinstance(target, ast.Attribute):
        if target.attr in _DUNDERS:
            return True
        owner = _resolve(target.value, namespace)
        if isinstance(owner, ModuleType):
            current = owner.__dict__.get(target.attr)
            return (references.package_module(owner.__name__) or callable(current)
                    or isinstance(current, ModuleType))
    if isinstance(target, ast.Subscript):
        base = target.value
        if isinstance(base, ast.Attribute) and base.attr in ("__dict__", "modules"):
            return True
        if isinstance(base, ast.Call) and getattr(base.func, "id", None) in _DYNAMIC:
            return True
    return isinstance(target, ast.Tuple | ast.List) and any(
        _changes_module(t, namespace) for t in target.elts)


def tampering(cells: Iterable[str], namespace: dict[str, Any] | None = None) -> list[str]:
    """The lines of ``cells`` that change a module (the package's or a library's) in place,
    or run code built at run time: each such line once, quoted."""
    if namespace is None:
        ipython = sys.modules.get("IPython")
        shell = ipython.get_ipython() if ipython is not None else None
        namespace = shell.user_ns if shell is not None else {}
    found = []
    for cell in cells:
        try:
            tree = ast.parse(cell)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            hit = False
            if isinstance(node, ast.Assign | ast.Delete):
                hit = any(_changes_module(t, namespace) for t in node.targets)
            elif isinstance(node, ast.AugAssign | ast.AnnAssign):
                hit = _changes_module(node.target, namespace)
            elif isinstance(node, ast.Call):
                name = getattr(node.func, "id", getattr(node.func, "attr", None))
                hit = name in _DYNAMIC - {"globals", "vars"}
            elif isinstance(node, ast.Attribute) and node.attr in _DUNDERS:
                hit = node.attr != "__class__"
            if hit:
                line = f"`{cell.splitlines()[node.lineno - 1].strip()}`"
                if line not in found:
                    found.append(line)
    return found
