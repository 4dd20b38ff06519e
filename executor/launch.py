"""Start the ranks on this machine and collect what they measured.

    launch(jobs, nproc, backend)   elastic launch (torch.distributed.launcher.api) of nproc
                                   processes on a free local port, no restarts; returns, per
                                   job, every rank's result dict (runtime.run_job)
    in_torchrun()                  this process is already one rank of a torchrun job
    run_here(jobs, backend)        run the jobs as that rank (rank 0 gets every rank's results)

Several jobs can share one launch (tests batch their checks: starting processes costs
seconds). CPU ranks use gloo with one thread each; CUDA ranks use nccl, one GPU per rank.

Failures: a rank that raises writes "rank R: <error>" with a timestamp to the run's error
directory and exits non-zero; the elastic agent then stops the other ranks (SIGTERM,
SIGKILL after `shutdown_timeout`), and launch() raises RankFailed with the earliest
error's line. Process groups have a timeout, so a rank stuck in a collective with a dead
peer fails instead of hanging. Ctrl-C reaches every rank; the agent stops them and
launch() raises KeyboardInterrupt.

Test hook: PARADIFF_FAULT="R:S" makes rank R raise at denoising step S (0-based) of
every job (runtime.Setup.inputs).
"""
from __future__ import annotations

import glob
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
import uuid
from datetime import timedelta


class RankFailed(RuntimeError):
    """A rank raised or died; the message is one line naming the rank and its error."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def in_torchrun() -> bool:
    env = os.environ
    return "TORCHELASTIC_RUN_ID" in env or all(k in env for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"))


def _device(backend: str) -> str:
    if backend != "nccl":
        return "cpu"
    import torch
    local = int(os.environ.get("LOCAL_RANK", "0"))
    torch.cuda.set_device(local)
    return f"cuda:{local}"


def worker(jobs: list[dict], backend: str, timeout_s: float, error_dir: str | None):
    """The entry point of every rank: run the jobs, gather every rank's results on rank 0."""
    import torch
    import torch.distributed as dist

    from .runtime import Job, World, run_job

    rank, size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    torch.set_num_threads(1)
    try:
        dist.init_process_group(backend, timeout=timedelta(seconds=timeout_s))
        world = World(rank, size, _device(backend), timeout_s)
        mine = [run_job(Job(**j), world) for j in jobs]
        everyone = [None] * size if rank == 0 else None
        dist.gather_object(mine, everyone, dst=0)
        return everyone
    except BaseException as e:
        if error_dir:
            line = _error_line(e)
            import traceback
            # written whole, then renamed: the launcher may kill this rank mid-write
            # (another rank failed first) and must never read half a file
            path = os.path.join(error_dir, f"rank{rank}.err")
            with open(path + ".tmp", "w") as fh:
                fh.write(f"{time.time():.6f} rank {rank}: {line}\n{traceback.format_exc()}")
            os.replace(path + ".tmp", path)
        raise
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def _error_line(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}".splitlines()[0] if str(e) else type(e).__name__


def run_here(jobs, backend: str = "gloo", timeout_s: float = 60.0):
    """Under torchrun: this process is one rank. Returns per job every rank's results on
    rank 0, None elsewhere; an error becomes RankFailed naming this rank."""
    try:
        everyone = worker([j.to_dict() for j in jobs], backend, timeout_s, None)
    except Exception as e:
        raise RankFailed(f"rank {os.environ.get('RANK', '?')}: {_error_line(e)}") from None
    if everyone is None:
        return None
    return [[everyone[r][k] for r in range(len(everyone))] for k in range(len(jobs))]


def _first_error(error_dir: str, failure) -> str:
    lines = []
    for path in glob.glob(os.path.join(error_dir, "rank*.err")):
        with open(path) as fh:
            first, _, trace = fh.read().partition("\n")
        stamp, _, line = first.partition(" ")
        try:
            lines.append((float(stamp), line, trace))
        except ValueError:          # not one of ours (worker writes them whole)
            continue
    if lines:
        _, line, trace = min(lines)
        if os.environ.get("PARADIFF_DEBUG"):     # the whole traceback, for developers
            print(trace, file=sys.stderr)
        return line
    # no error file: the rank died without raising (killed, crashed); say how
    first = failure.get_first_failure()[1] if failure is not None else None
    if first is None:
        return "a rank failed without a message"
    how = f"signal {first.signal_name()}" if first.exitcode < 0 else f"exit code {first.exitcode}"
    tail = ""
    logs = glob.glob(os.path.join(error_dir, "**", str(first.local_rank), "stderr.log"), recursive=True)
    if logs:
        with open(logs[0]) as fh:
            rest = [ln.strip() for ln in fh.read().splitlines() if ln.strip()]
        tail = f": {rest[-1]}" if rest else ""
    return f"rank {first.local_rank}: died with {how}{tail}"


def launch(jobs, nproc: int, backend: str = "gloo", timeout_s: float = 60.0):
    """Run `jobs` (runtime.Job) on nproc local ranks; per job, the list of rank results."""
    from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs, Std
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    # the agent's own log lines (start-up, "shutting down workers") would drown the one-line
    # report; torch gives each module logger its own level, so quiet them one by one
    for name in list(logging.root.manager.loggerDict):
        if name.startswith(("torch.distributed", "torch.multiprocessing")):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    os.environ.setdefault("OMP_NUM_THREADS", "1")        # inherited by the ranks
    if backend == "gloo":
        # gloo ranks are forked from a forkserver that has imported torch and the executor
        # (fast starts, like fork), never from this process: forking a process whose torch
        # and gloo threads may hold locks can leave a child hung before it joins the group
        import multiprocessing
        preload = ["torch", "torch.distributed", __name__, "executor.runtime"]
        if any(getattr(j, "scale", "") for j in jobs):      # diffusers models: their libraries too
            preload += ["executor.diffusers.pipeline", "executor.diffusers.families"]
        multiprocessing.set_forkserver_preload(preload)
    error_dir = tempfile.mkdtemp(prefix="paradiff-run-")
    # the rendezvous waits for every rank to join; 8 ranks forked on a loaded 2-core machine
    # have been seen to take over a minute, so it gets at least 5 minutes
    config = LaunchConfig(
        min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=uuid.uuid4().hex,
        rdzv_backend="c10d", rdzv_endpoint=f"127.0.0.1:{free_port()}", rdzv_configs={"timeout": max(300, int(timeout_s))},
        max_restarts=0, monitor_interval=0.1, start_method="forkserver" if backend == "gloo" else "spawn",
        logs_specs=DefaultLogsSpecs(log_dir=error_dir, redirects=Std.ALL), shutdown_timeout=5)
    try:
        out = elastic_launch(config, worker)([j.to_dict() for j in jobs], backend, timeout_s, error_dir)
    except ChildFailedError as e:
        raise RankFailed(_first_error(error_dir, e)) from None
    except SignalException as e:
        if e.sigval == signal.SIGINT:
            raise KeyboardInterrupt from None
        raise RankFailed(f"the launcher got signal {signal.Signals(e.sigval).name}; the ranks were stopped") from None
    finally:
        os.environ.get("PARADIFF_KEEP_LOGS") or shutil.rmtree(error_dir, ignore_errors=True)
    everyone = out[0]
    return [[everyone[r][k] for r in range(nproc)] for k in range(len(jobs))]
