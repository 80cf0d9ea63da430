"""show_source: the package's code shown in a notebook, highlighted, with stable text."""

from __future__ import annotations

import pytest

from vaelab import display as display_module
from vaelab.display import SourceCode, show_source, source_of
from vaelab.kl import gaussian_kl_standard_normal
from vaelab.tooling.student import Exercise


def test_plain_text_is_a_header_then_the_exact_source():
    src = source_of(gaussian_kl_standard_normal)
    lines = repr(src).splitlines()
    assert lines[0] == "# vaelab.kl.gaussian_kl_standard_normal"
    # The package's answer to exercises 3.1 and 4.2: its decorator is shown with it.
    assert lines[1:3] == ['@answers("3.1", "4.2")', "def gaussian_kl_standard_normal("]
    assert "0.5 * (mu_t.pow(2)" in lines[-1]
    assert str(src) == repr(src)
    assert "0x" not in repr(src) and "/" not in lines[0]  # nothing volatile for nbval


def test_html_is_highlighted_with_inline_styles():
    html = source_of(gaussian_kl_standard_normal)._repr_html_()
    assert html.startswith('<div class="highlight">')
    assert 'style="' in html and "<span" in html
    assert "gaussian_kl_standard_normal" in html


def test_classes_and_methods_are_dedented():
    src = source_of(Exercise.stub.fget)
    assert src.code.startswith("@property\ndef stub(self)")
    assert src.header == "# vaelab.tooling.student.Exercise.stub"
    assert source_of(SourceCode).code.startswith("class SourceCode:")


def test_show_source_displays_the_object(monkeypatch):
    shown = []
    monkeypatch.setattr(display_module, "display", shown.append)
    assert show_source(gaussian_kl_standard_normal) is None
    (obj,) = shown
    assert isinstance(obj, SourceCode) and "def gaussian_kl_standard_normal" in obj.code


def test_show_source_prints_plain_text_outside_ipython(capsys):
    show_source(source_of)
    out = capsys.readouterr().out
    assert out.startswith("# vaelab.display.source_of\ndef source_of(")


@pytest.mark.parametrize("obj", [42, "text", len])
def test_objects_without_python_source_are_rejected(obj):
    with pytest.raises(ValueError, match="needs a function, method, class or module"):
        source_of(obj)


def test_functions_without_a_source_file_are_rejected():
    namespace: dict = {}
    exec(compile("def f():\n    return 1\n", "<notebook cell>", "exec"), namespace)
    with pytest.raises(ValueError, match="no source file for 'f'"):
        source_of(namespace["f"])
