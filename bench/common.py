"""What every benchmark script shares: the commit it measured and its BENCHMARKS.md section."""
from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "BENCHMARKS.md"


def commit() -> str:
    """Short hash of HEAD (the numbers describe the committed code plus any local edits)."""
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return out.stdout.strip() or "uncommitted"


def replace_section(heading: str, body: str, path: Path = BENCHMARKS) -> None:
    """Replace the section starting with `heading` (up to the next '## ') or append it."""
    text = path.read_text() if path.exists() else "# Benchmarks\n\n"
    start = text.find(heading)
    if start < 0:
        text = text.rstrip() + "\n\n" + body.rstrip() + "\n"
    else:
        end = text.find("\n## ", start + len(heading))
        text = text[:start] + body.rstrip() + ("\n\n" + text[end + 1:] if end >= 0 else "\n")
    path.write_text(text)
