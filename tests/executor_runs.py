"""Run executor jobs on local ranks and compare each with one process (the executor tests'
shared harness: tests/test_executor.py, test_executor_diffusers.py, test_executor_families.py)."""
from __future__ import annotations

from executor.experiment import run_serial
from executor.launch import launch
from executor.measure import fidelity


def run_against_serial(jobs, nproc: int, timeout_s: float = 300) -> dict:
    """{label: (job, rank results, fidelity against the serial run)}; one serial run per
    model, batch, dtype, size and step count, shared by the jobs that have them."""
    results = launch(jobs, nproc, timeout_s=timeout_s)
    serial: dict = {}
    out = {}
    for job, ranks in zip(jobs, results):
        key = (job.model, job.batch, job.dtype, job.height, job.width, job.frames, job.steps)
        if key not in serial:
            serial[key] = run_serial(job)["output"]
        out[job.label] = (job, ranks, fidelity(ranks[0]["output"], serial[key]))
    return out
