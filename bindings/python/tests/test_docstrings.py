"""Every public class, function and method of `ferrymq` and `ferrymq.aio` has a docstring
(the Rust doc comments of the native module become its docstrings)."""

from __future__ import annotations

import inspect
from types import ModuleType
from typing import List

import pytest

import ferrymq
import ferrymq.aio


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
