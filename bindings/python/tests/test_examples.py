"""The examples and the README's quickstart run as written (STYLE: README first, and its
examples run)."""

from __future__ import annotations

import doctest
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import ferrymq
import ferrymq.aio

HERE = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("example", ["quickstart.py", "asyncio_quickstart.py"])
def test_example_runs(example: str) -> None:
    done = subprocess.run(
        [sys.executable, str(HERE / "examples" / example)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()


def test_readme_quickstart_runs(tmp_path: Path) -> None:
    readme = (HERE / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    assert blocks, "the README has Python examples"
    for number, code in enumerate(blocks):
        script = tmp_path / f"readme_{number}.py"
        script.write_text(code)
        done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
        assert done.returncode == 0, f"README block {number} failed:\n{code}\n{done.stderr}"


@pytest.mark.parametrize("module", [ferrymq, ferrymq.aio], ids=["ferrymq", "ferrymq.aio"])
def test_module_doctests(module: ModuleType) -> None:
    failures, tried = doctest.testmod(module)
    assert tried > 0 and failures == 0
