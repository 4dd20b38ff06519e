"""Test-only entry point: `python tests/fault_run.py FAULT_JSON run ARGS...` is
`python cli.py run ARGS...` with runtime.Job.fault set to FAULT_JSON (e.g.
'{"rank": 1, "step": 3, "kind": "SIGKILL"}'; "null": no fault). The production path reads
no fault from anywhere: only this wrapper sets the field."""
from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import executor.experiment as experiment  # noqa: E402

FAULT = json.loads(sys.argv[1])
_prepare = experiment.prepare


def _with_fault(*args, **kw):
    prep = _prepare(*args, **kw)
    prep.job.fault = FAULT
    return prep


experiment.prepare = _with_fault

if __name__ == "__main__":
    import cli
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    sys.exit(cli.main(sys.argv[2:]))
