"""`profile --model ID` from the command line: check everything, then measure (profiler/cli.py).

Into an existing profile file (--out, default hw_profiles/local.json) of this device, dtype
and thread count only the model is measured and its table added (replacing the table of
the same model and scale); a file of another device, dtype or thread count is refused
(its op curves would not describe the blocks); where --out does not exist the op curves
and collectives are measured first, as plain `profile` does.
"""
from __future__ import annotations

import time
from pathlib import Path

from planner.errors import UsageError


def profile_model(args, opts, out: Path):
    """(profile document, the model's table, the ModelSpec it was measured on, whether the
    op curves were measured now). Every check comes before the first measurement."""
    import torch

    from planner.profile_io import load_profile_doc

    from .model import ModelRequest, check_memory, check_model, measure_model, merge_table
    from .run import check_options, profile_machine
    device, gpu_id, dtype, threads = check_options(opts)
    old = None
    if out.exists():
        old, _ = load_profile_doc(out)
        dev = old["device"]
        mine = (gpu_id, dtype, threads if device == "cpu" else None)
        theirs = (dev["gpu_id"], dev["dtype"], dev.get("threads") if device == "cpu" else None)
        if mine != theirs:
            raise UsageError(f"--out {out} holds a profile of {theirs[0]} in {theirs[1]}"
                             + (f" with {theirs[2]} thread(s)" if device == "cpu" else "")
                             + f", but this run measures {mine[0]} in {mine[1]}"
                             + (f" with {mine[2]} thread(s)" if device == "cpu" else "")
                             + "; give another --out (or matching --dtype/--threads)")
    req = ModelRequest(args.model, args.scale, args.weights, args.height, args.width, args.frames, args.batch,
                       args.text_tokens)
    job = check_model(req, dtype)
    check_memory(job, device, dtype)
    # every check passed: measuring starts
    t0 = time.perf_counter()
    doc = old
    if doc is None:
        doc = profile_machine(opts)
        doc["provenance"]["seconds"] = round(time.perf_counter() - t0, 2)
    before = torch.get_num_threads()
    if device == "cpu":
        torch.set_num_threads(threads)      # the executor's one thread per rank (--threads)
    try:
        table = measure_model(job, device, gpu_id, dtype, opts.preset, opts.progress, opts.argv)
    finally:
        torch.set_num_threads(before)
    return merge_table(doc, table), table, job.spec, old is None
