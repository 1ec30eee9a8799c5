"""Every public class, function and method of `ferrymq` and `ferrymq.aio` has a docstring
(the Rust doc comments of the native module become its docstrings), and so has every member
of the hand-written stubs, which is what an IDE shows on hover."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path
from types import ModuleType
from typing import List, Union

import pytest

import ferrymq
import ferrymq.aio

STUBS = Path(ferrymq.__file__).with_name("_native.pyi")


def undocumented(module: ModuleType) -> List[str]:
    missing = []
    for name in getattr(module, "__all__", []):
        obj = getattr(module, name)
        if not inspect.isclass(obj) and not callable(obj):
            continue
        if getattr(obj, "__module__", "") == "typing" or not hasattr(obj, "__doc__"):
            continue
        if not (obj.__doc__ or "").strip():
            missing.append(name)
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                if attr.startswith("_"):
                    continue
                if not (getattr(member, "__doc__", None) or "").strip():
                    missing.append(f"{name}.{attr}")
    return missing


@pytest.mark.parametrize("module", [ferrymq, ferrymq.aio], ids=["ferrymq", "ferrymq.aio"])
def test_public_api_is_documented(module: ModuleType) -> None:
    assert undocumented(module) == []


def test_every_stub_member_has_a_docstring() -> None:
    tree = ast.parse(STUBS.read_text(), filename=str(STUBS))
    assert ast.get_docstring(tree)
    missing: List[str] = []

    def visit(node: Union[ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef], prefix: str) -> None:
        name = prefix + node.name
        if not ast.get_docstring(node):
            missing.append(name)
        if isinstance(node, ast.ClassDef):
            for child in node.body:
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    visit(child, name + ".")

    definitions = [n for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))]
    assert len(definitions) > 10
    for node in definitions:
        visit(node, "")
    assert missing == []
