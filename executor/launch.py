"""Start the executor's ranks on this machine and collect what they measured.

    launch(jobs, nproc, backend)   nproc local ranks (executor/procs.py: they die with this
                                   process, and a failure names the rank that failed first);
                                   returns, per job, every rank's result dict (runtime.run_job)
    in_torchrun()                  this process is already one rank of a torchrun job
    run_here(jobs, backend)        run the jobs as that rank (rank 0 gets every rank's results)

Several jobs can share one launch (tests batch their checks: starting processes costs
seconds). CPU ranks use gloo with one thread each, forked from a forkserver that has
imported torch; CUDA ranks use nccl, one GPU per rank, spawned. Process groups have a
timeout, so a rank stuck in a collective with a dead or stopped peer fails instead of
hanging; Ctrl-C, SIGTERM and SIGHUP stop every rank (procs.Ranks.wait).

Fault injection is a Job field (runtime.Job.fault) that only tests set.
"""
from __future__ import annotations

import logging
import os

from .procs import RankFailed, die_with_parent, in_torchrun, init_group, start  # noqa: F401 (the executor's API)


def _device(backend: str) -> str:
    if backend != "nccl":
        return "cpu"
    import torch
    local = int(os.environ.get("LOCAL_RANK", "0"))
    torch.cuda.set_device(local)
    return f"cuda:{local}"


def worker(rank: int, size: int, jobs: list[dict], backend: str, timeout_s: float):
    """Every rank: run the jobs, gather every rank's results on rank 0."""
    import torch

    from .runtime import Job, World, run_job
    torch.set_num_threads(1)
    dist = init_group(backend, timeout_s)
    try:
        world = World(rank, size, _device(backend), timeout_s)
        mine = [run_job(Job(**j), world) for j in jobs]
        everyone = [None] * size if rank == 0 else None
        dist.gather_object(mine, everyone, dst=0)
        return everyone
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def run_here(jobs, backend: str = "gloo", timeout_s: float = 60.0):
    """Under torchrun: this process is one rank (and ends with torchrun's agent). Returns
    per job every rank's results on rank 0, None elsewhere; an error becomes RankFailed
    naming this rank."""
    die_with_parent()
    rank, size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    try:
        everyone = worker(rank, size, [j.to_dict() for j in jobs], backend, timeout_s)
    except Exception as e:
        from .procs import _error_line
        raise RankFailed(f"rank {rank}: {_error_line(e)}") from None
    if everyone is None:
        return None
    return [[everyone[r][k] for r in range(len(everyone))] for k in range(len(jobs))]


def _preload(jobs) -> tuple[str, ...]:
    """Modules the forkserver imports once for all the ranks it forks: the executor, and the
    modules of the jobs' diffusers pipeline classes (with their denoiser, VAE and
    transformers text encoders). diffusers imports those lazily, on first use: about 1.5 s
    of CPU per rank on a development machine, seconds of wall time when 8 ranks share 2
    cores. Importing them here also spares the serial baseline that follows in this process."""
    import diffusers

    from .diffusers.configs import pipeline_configs
    from .diffusers.pipeline import _quiet
    # the libraries' warnings about what a run does on purpose (pipeline._quiet) stay out of
    # the one-line report: here, and in the forkserver, which reads them from its environment
    _quiet()
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    pipelines = [getattr(diffusers, pipeline_configs(j.model).pipeline).__module__ for j in jobs]
    return tuple(dict.fromkeys([__name__, "executor.runtime", "executor.diffusers.pipeline",
                                "executor.diffusers.families"] + pipelines))


def launch(jobs, nproc: int, backend: str = "gloo", timeout_s: float = 60.0):
    """Run `jobs` (runtime.Job) on nproc local ranks; per job, the list of rank results."""
    for name in list(logging.root.manager.loggerDict):      # torch's own chatter stays out of the one line
        if name.startswith(("torch.distributed", "torch.multiprocessing")):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    os.environ.setdefault("OMP_NUM_THREADS", "1")        # inherited by the ranks
    ranks = start(worker, nproc, ([j.to_dict() for j in jobs], backend, timeout_s),
                  method="forkserver" if backend == "gloo" else "spawn",
                  preload=_preload(jobs) if backend == "gloo" else (), store_timeout_s=max(300.0, timeout_s))
    everyone = ranks.wait()
    return [[everyone[r][k] for r in range(nproc)] for k in range(len(jobs))]
