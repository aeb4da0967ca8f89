"""What Linux's /proc says about a process, for the bench and its cleanup (empty when the process is gone)."""
from __future__ import annotations

from pathlib import Path


def cmdline(pid: int) -> list[str]:
    """The process's arguments."""
    try:
        return [a.decode(errors="replace") for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if a]
    except OSError:
        return []


def environ(pid: int) -> dict[str, str]:
    """The environment the process started with."""
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    return dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)
