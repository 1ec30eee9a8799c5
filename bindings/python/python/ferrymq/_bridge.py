"""Glue between the native module's runtime and asyncio (internal)."""

from __future__ import annotations

import asyncio
from typing import Any


def resolve(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    """Completes `future` with `value` (a result when `ok`, else an exception), unless it was
    cancelled meanwhile. Called on the loop's thread through `call_soon_threadsafe`."""
    if future.done():
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)
