"""The README's code examples run and say what they claim."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
MARK = "<!-- tested: tests/test_readme.py runs this block -->"


def readme_tested_blocks():
    text = README.read_text()
    pattern = re.escape(MARK) + r"\s*```python\n(.*?)```"
    return re.findall(pattern, text, flags=re.DOTALL)


def test_readme_has_tested_examples():
    assert len(readme_tested_blocks()) >= 5


@pytest.mark.parametrize("index", range(len(readme_tested_blocks())))
def test_readme_example_runs(index, capsys):
    code = readme_tested_blocks()[index]
    exec(compile(code, f"README.md block {index}", "exec"), {"__name__": "readme"})  # noqa: S102
    if index == 0:
        assert "all gradients agree" in capsys.readouterr().out
