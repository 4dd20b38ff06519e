"""Run `cli.py` in this process (cheap: no interpreter start, no re-import) and see what a
user would: exit code, stdout, stderr, and whether a traceback escaped."""
from __future__ import annotations

import contextlib
import io
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import cli  # noqa: E402


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.err.strip().splitlines()


def run_cli(*args: str) -> Result:
    """cli.main(args) with stdout/stderr captured; an escaping exception is a traceback
    (returned as exit code 1 with the traceback on stderr, as the interpreter would)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(list(args))
        except SystemExit as e:          # argparse exits
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except BaseException:            # what a user would see as a traceback
            traceback.print_exc(file=err)
            code = 1
    return Result(code, out.getvalue(), err.getvalue())
