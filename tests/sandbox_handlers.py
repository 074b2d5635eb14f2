"""Handlers for sandbox tests, imported by worker processes through PYTHONPATH."""

from __future__ import annotations

import time
from typing import Any


def hog(item: dict[str, Any]) -> dict[str, Any]:
    """Allocate `mb` MiB (the warm-up allocates nothing)."""
    block = bytearray(int(item.get("mb", 0)) * 1024 * 1024)
    return {"allocated": len(block)}


def nap(item: dict[str, Any]) -> dict[str, Any]:
    time.sleep(float(item.get("s", 0)))
    return {"slept": item.get("s", 0)}
