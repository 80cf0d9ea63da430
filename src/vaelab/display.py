"""Show the package's own code in a notebook, when the code itself is the lesson.

``show_source(vae_loss)`` displays the function as it is in ``src/`` (one copy,
never a pasted duplicate that can drift), syntax-highlighted in Jupyter and the
HTML export. Its text/plain form is the bare source under a one-line header
naming the object, so nbval compares stable text (no paths, no addresses).
"""

from __future__ import annotations

import inspect
import textwrap
from typing import Any

from IPython.display import display
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

from vaelab import references


class SourceCode:
    """Python source with an HTML (Pygments) and a plain-text representation.

    ``header`` is a comment line such as ``# vaelab.kl.gaussian_kl_standard_normal``;
    ``code`` the dedented source.
    """

    def __init__(self, code: str, header: str = "") -> None:
        self.code = code
        self.header = header

    @property
    def text(self) -> str:
        """Header line (if any) and code, as plain text."""
        return f"{self.header}\n{self.code}" if self.header else self.code

    def _repr_html_(self) -> str:
        # Inline styles (noclasses): the colours survive JupyterLab, nbconvert HTML
        # and viewers that drop <style> blocks.
        formatter = HtmlFormatter(noclasses=True, style="default", nobackground=True)
        return highlight(self.text, PythonLexer(), formatter)

    def __repr__(self) -> str:
        return self.text

    __str__ = __repr__


def source_of(obj: Any) -> SourceCode:
    """The source of a function, method, class or module as a ``SourceCode`` object.

    Raises ``ValueError`` for objects whose source Python cannot find (built-ins,
    objects defined interactively in a notebook cell).
    """
    guarded = references.source_code(obj)  # a function carrying @answers: its own source
    if guarded is not None:
        return SourceCode(guarded.rstrip("\n"), f"# {obj.__module__}.{obj.__qualname__}")
    target = inspect.unwrap(obj) if callable(obj) else obj
    if not (inspect.isfunction(target) or inspect.ismethod(target)
            or inspect.isclass(target) or inspect.ismodule(target)):
        raise ValueError(
            f"show_source needs a function, method, class or module, got {type(obj).__name__}"
        )
    try:
        code = inspect.getsource(target)
    except (OSError, TypeError):
        raise ValueError(
            f"no source file for {getattr(target, '__qualname__', target)!r}: "
            "show_source works on objects defined in a .py file (for example in vaelab)"
        ) from None
    module = getattr(target, "__module__", None) if not inspect.ismodule(target) else None
    qualname = getattr(target, "__qualname__", getattr(target, "__name__", ""))
    header = f"# {module}.{qualname}" if module else f"# {qualname}"
    return SourceCode(textwrap.dedent(code).rstrip("\n"), header)


def show_source(obj: Any) -> None:
    """Display the source of ``obj`` (function, method, class, module), syntax-highlighted.

    In Jupyter the HTML shows colours; the text/plain form (what nbval compares)
    is the header line ``# module.qualname`` followed by the source. Outside
    IPython it prints the plain text.
    """
    display(source_of(obj))
