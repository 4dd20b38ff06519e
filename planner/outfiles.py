"""Output files: checked before any work, written whole or not at all.

    check_out_path(path, suffixes, what)   refuse, in one line, an output that cannot be
                                           written: wrong suffix, a directory, a missing
                                           parent directory, no permission, a read-only
                                           file system (probed by creating and removing a
                                           file there: os.access says yes to root, and to
                                           paths under /proc)
    write_atomic(path, text)               through a temporary file in the same directory
                                           and a rename: a reader sees the old file or the
                                           whole new one, and an error midway (disk full,
                                           interrupt) leaves no partial file

Every command's outputs (plan --report/--trace, profile --out/--report, run --report,
validate --report, report --out) go through both, so a missing directory is treated the
same way everywhere: refused, not created.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import UsageError


def check_out_path(path, suffixes: tuple[str, ...], what: str) -> Path:
    """The path, if a file can be written there; UsageError naming it otherwise."""
    from .limits import show
    p = Path(path)
    name = show(str(path))
    if not str(path).strip():
        raise UsageError(f"{name}: give a file name for the {what}")
    if p.suffix.lower() not in suffixes or not str(path).isprintable():
        raise UsageError(f"{name}: the {what} is {suffixes[0][1:].upper()}; give a file name ending in {suffixes[0]}")
    if p.is_dir():
        raise UsageError(f"{name}: is a directory")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        why = "is not a directory" if parent.exists() else "does not exist"
        raise UsageError(f"{name}: cannot write: directory {parent} {why}")
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".probe", dir=parent)
    except OSError as e:
        raise UsageError(f"{name}: cannot write in {parent} ({e.strerror or type(e).__name__})") from None
    os.close(fd)
    os.unlink(probe)
    return p


def write_atomic(path, text: str) -> Path:
    """Write text to path atomically (module doc); UsageError naming the path on failure."""
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=parent)
    except OSError as e:
        raise UsageError(f"{p}: cannot write ({e.strerror or e})") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        # mkstemp creates 0600; an output is meant to be shared like any other file
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, p)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise UsageError(f"{p}: cannot write ({e.strerror or e})") from None
        raise
    return p
