"""`python cli.py run`: run a plan for real on this machine and check the planner's prediction.

    python cli.py run [scenario options] [--plan STR] [--order DIM,...] [--nproc N]
                      [--backend gloo|nccl] [--repeats R] [--json]

Without --plan it runs the plan planner.search recommends for this machine, laid out as
its placement chose; --order lays the ranks out in another order (default xDiT's). It
starts the ranks itself (executor/procs.py) or, started by torchrun, is one of them. CPU:
gloo, one thread per rank (and for the serial baseline), fp32 by default. CUDA: nccl, bf16
by default. --model takes a zoo model run on its real diffusers classes (executor/diffusers),
random weights at --scale (default small) or a local --weights folder. Bad options: one line
on stderr, exit code 2, before any rank starts; a failing rank: one line naming the rank that
failed first and how, exit code 1; Ctrl-C 130, SIGTERM 143, SIGHUP 129, every rank stopped.
"""
from __future__ import annotations

import json
import os
import sys

# The default model: SD3-medium's classes (SD3Transformer2DModel, CLIP x2 + T5, AutoencoderKL)
# at --scale small. An MM-DiT with CFG runs every sequence, patch, pipeline and step
# strategy (Ulysses and TP split its 6 heads at small 2 or 3 ways); its small denoising loop
# takes about 1.5 s on one core (12 steps at 256x256, measured here; PixArt-alpha 1.9 s,
# SDXL 2.3 s; Flux, faster, has no CFG branch), and it is the model of issue 15's checks
# and of bench/bench_executor.py.
DEFAULT_MODEL = "sd3-medium"
DTYPES = ("fp32", "bf16", "fp16")          # executor/runtime.DTYPES without the tf32 alias
DEFAULT_TOLERANCE = 0.05     # ParaDiGMS Picard tolerance (relative L2 change of a point)


def register(sub, common) -> None:
    from planner.limits import choice, option
    p = sub.add_parser("run", help="run a plan with torch.distributed here and compare with the prediction")
    from .diffusers.configs import model_ids
    g = p.add_argument_group("scenario")
    g.add_argument("--model", default=None,
                   help=f"a zoo model, run on its real diffusers classes (default {DEFAULT_MODEL}): "
                        f"{', '.join(model_ids())}")
    common.add_size_args(g)
    g.add_argument("--dtype", default=None, help="fp32 | bf16 | fp16 (default fp32 with gloo, bf16 with nccl)")
    p.add_argument("--plan", help="plan string (default: the planner's recommendation for this machine)")
    p.add_argument("--order", metavar="DIM,DIM,...",
                   help="layout order of the plan's parallel dimensions, inner to outer, e.g. cfg,ring "
                        "(default: xDiT's tp, sp, pp, cfg, dp; without --plan, the placement the planner chose)")
    p.add_argument("--nproc", type=option("--nproc", 1, 1024),
                   help="ranks to start (default: the plan's GPU count, else the CPU cores or CUDA devices); "
                        "gloo: at most max(8, 4 x cores), nccl: at most the CUDA devices")
    p.add_argument("--backend", type=choice("--backend", ("gloo", "nccl")), default=None,
                   help="gloo (CPU, default) | nccl (CUDA)")
    p.add_argument("--gpu", default=None, help="with --backend nccl: the hw_profiles GPU id of the devices "
                   "(default: the one torch's device name matches)")
    p.add_argument("--repeats", type=option("--repeats"), default=3,
                   help="timed runs, 1..100; the median is reported (default 3)")
    p.add_argument("--warmup-runs", type=option("--warmup-runs"), default=1,
                   help="untimed runs before them, 0..100 (default 1)")
    p.add_argument("--guidance", type=option("--guidance"), default=4.5,
                   help="classifier-free guidance scale, 0..100 (default 4.5)")
    p.add_argument("--tolerance", type=option("--tolerance"), default=DEFAULT_TOLERANCE,
                   help=f"ParaDiGMS Picard tolerance, 0..1, 0 = exact (default {DEFAULT_TOLERANCE})")
    p.add_argument("--seed", type=option("--seed"), default=0,
                   help="weights, noise and text embeddings, 0..2^63-1 (default 0)")
    p.add_argument("--timeout", type=option("--timeout"), default=120.0,
                   help="seconds a collective may wait for a peer, 0.1..86400 (default 120); a rank "
                        "that waits longer fails the run")
    p.add_argument("--hw-profile", help="hardware profile (default: hw_profiles/local.json if present)")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.add_argument("--report", metavar="FILE.html",
                   help="also write an interactive HTML report: measured against predicted, time per step, fidelity")
    from .diffusers.options import add_options
    add_options(p)          # --scale, --weights, --prompt, --negative-prompt, --out, --cp (diffusers models)
    p.set_defaults(func=lambda args: cmd_run(args, common))


def _usage(msg: str):
    from planner.errors import UsageError
    return UsageError(msg)


def _check_options(args) -> str:
    """Validate what needs no model; returns the backend."""
    backend = args.backend or "gloo"
    if args.model is None:
        args.model = DEFAULT_MODEL
    from .diffusers import options as diffusers_options
    if not diffusers_options.is_model(args.model):
        raise _usage(diffusers_options.refusal(args.model))
    diffusers_options.check(args)
    if args.report is not None:      # refused before any rank starts, not after the run
        from planner.report.html import check_out_path
        check_out_path(args.report, (".html", ".htm"), "report")
    if args.hw_profile is not None and not args.hw_profile.strip():
        raise _usage("--hw-profile '': give a profile file (written by `cli.py profile`)")
    if backend == "nccl":
        import torch
        if not torch.cuda.is_available():
            raise _usage("--backend nccl needs CUDA, and torch sees no CUDA device here; use --backend gloo")
    elif args.gpu not in (None, "cpu"):
        raise _usage(f"--gpu {args.gpu}: a gloo run happens on this CPU; use --backend nccl for GPUs")
    return backend


def _nproc(args, backend: str) -> int:
    """The rank count, within what this machine can run: gloo ranks share the CPU cores
    (planner.limits.cpu_rank_limit), nccl ranks own one GPU each."""
    from planner.limits import cores, cpu_rank_limit
    from .launch import in_torchrun
    if in_torchrun():
        n = int(os.environ["WORLD_SIZE"])
        if args.nproc not in (None, n):
            raise _usage(f"--nproc {args.nproc} but torchrun started {n} ranks")
        return n
    n = args.nproc
    if n is None and args.plan:
        from planner.plan import parse_plan
        n = parse_plan(args.plan).gpus
    if backend == "nccl":
        import torch
        have = torch.cuda.device_count()
        if n is not None and n > have:
            raise _usage(f"--nproc {n}: nccl runs one rank per GPU and torch sees {have} here")
        return n or have
    limit = cpu_rank_limit()
    if n is not None and n > limit:
        raise _usage(f"--nproc {n}: at most {limit} gloo ranks on this machine's {cores()} cores "
                     f"(max(8, 4 per core)); more only measure the scheduler")
    return n or cores()


def _gpu_id(args, backend: str) -> str:
    if backend == "gloo":
        return "cpu"
    if args.gpu:
        return args.gpu
    import torch
    from planner.hardware import gpu_id_for_device_name
    props = torch.cuda.get_device_properties(0)
    return gpu_id_for_device_name(torch.cuda.get_device_name(0), props.total_memory / 2**30, hint="give --gpu")


def _recommended(model, sc, cluster, profile, job_errors) -> tuple[str, tuple[str, ...]]:
    """The planner's recommendation, or the best-ranked fitting plan the executor runs,
    with the layout order the placement chose for it (empty: xDiT's)."""
    from planner.search import search
    res = search(model, sc, cluster, profile)
    ranked = ([res.recommended] if res.recommended else []) + [p for p in res.ranked if p.fits]
    for pred in ranked:
        if not job_errors(pred.plan):
            return str(pred.plan), res.placed_order(pred.plan) or ()
    raise _usage(f"the planner found no plan for {cluster.n} ranks that fits and that the executor can run")


def _order(text: str | None, plan) -> tuple[str, ...]:
    """--order as a tuple of the plan's dimensions (UsageError naming what is accepted)."""
    if text is None:
        return ()
    from planner.layout import dimension_names
    dims = dimension_names(plan.plans())
    order = tuple(d.strip() for d in text.split(",") if d.strip())
    bad = [d for d in order if d not in dims]
    if bad or len(set(order)) != len(order) or not order:
        raise _usage(f"--order {text}: give distinct dimensions of plan '{plan}', inner to outer, "
                     f"separated by commas; accepted: {', '.join(dims) or 'none (the plan has one GPU)'}")
    return order


def _shared_cores(profile, nproc: int, backend: str):
    """(profile, warning or None): gloo ranks beyond this machine's cores time-share them,
    each computing at most cores/nproc as fast as alone. The prediction's compute slows by
    that factor (on top of the measured concurrency slowdown), and the warning says that
    such a run mostly measures the scheduler (busy-polling peers, context switches)."""
    import dataclasses

    from planner.limits import cores
    have = cores()
    if backend != "gloo" or nproc <= have:
        return profile, None
    return (dataclasses.replace(profile, concurrent_slowdown=profile.concurrent_slowdown * nproc / have),
            f"warning: {nproc} ranks on {have} cores: ranks time-share the cores, so the prediction slows "
            f"compute {nproc / have:.1f}x and the measurement is mostly scheduling")


def _check_memory(prep, model, sc, profile, nproc: int, backend: str) -> None:
    """Refuse, before any rank starts, a run whose predicted memory this machine lacks
    (e.g. --height 100000 --width 100000 failed after a minute on a 60 GB allocation)."""
    from planner.cost.predict import predict
    from planner.plan import parse_plan

    from .experiment import local_cluster
    p = prep.prediction
    if backend == "nccl":
        if not p.fits:
            raise _usage(f"plan '{p.plan}' needs {p.memory_bytes / 2**30:.1f} GB per GPU, the GPU has "
                         f"{p.capacity_bytes / 2**30:.0f} GB; use smaller sizes or more ranks")
        return
    from planner.limits import available_memory
    avail = available_memory()
    if avail is None:
        return
    serial = predict(parse_plan("serial"), model, sc, local_cluster(1), profile).memory_bytes
    need = nproc * p.memory_bytes + serial
    if need > avail:
        raise _usage(f"{sc.height}x{sc.width}" + (f"x{sc.frames}f" if sc.frames > 1 else "") +
                     f" with plan '{p.plan}' needs about {need / 2**30:.1f} GB ({nproc} ranks x "
                     f"{p.memory_bytes / 2**30:.1f} GB + the serial baseline {serial / 2**30:.1f} GB) but this "
                     f"machine has {avail / 2**30:.1f} GB available; use smaller sizes")


def cmd_run(args, common) -> int:
    from planner import inputs
    from planner.limits import show

    from .launch import in_torchrun
    if in_torchrun():       # torchrun's rank: end with its agent, also while it builds the model
        from .procs import die_with_parent
        die_with_parent()
    backend = _check_options(args)
    nproc = _nproc(args, backend)
    if nproc < 1:
        raise _usage("no CUDA device to run on")
    from .experiment import hw_profile, local_cluster
    cluster = local_cluster(nproc, backend, _gpu_id(args, backend))
    dtype = args.dtype if args.dtype is not None else ("fp32" if backend == "gloo" else inputs.default_dtype(cluster))
    if dtype not in DTYPES:
        raise _usage(f"--dtype {show(dtype)}: accepted (what the executor runs): {', '.join(DTYPES)}")
    inputs.check_dtype(cluster, dtype)
    model, sc = inputs.scenario(args.model, height=args.height, width=args.width, frames=args.frames,
                                steps=args.steps, batch=args.batch, text_tokens=args.text_tokens,
                                cfg=False if args.no_cfg else None, dtype=dtype, scope="denoise")
    from planner.legality import plan_errors
    from planner.plan import parse_plan

    from .legality import job_errors as _job_errors

    def job_errors(plan):
        return _job_errors(model.id, sc.height, sc.frames, plan, scale=args.scale, width=sc.width,
                           text_tokens=sc.text_tokens or model.facts.text_tokens, weights=args.weights or "")
    if args.plan is not None:   # what the architecture cannot run is refused before torch is imported
        errs = plan_errors(parse_plan(args.plan), model, sc, nproc) + job_errors(parse_plan(args.plan))
        if errs:
            raise _usage(f"plan '{args.plan}': {errs[0]}")
    from .diffusers.options import model_spec
    model, note, diffusers = model_spec(args, model)    # the ModelSpec of what runs at this scale
    if args.hw_profile is not None:      # a given profile must be of this device and dtype
        from planner.profile_io import check_profile_applies, load_profile_doc
        doc, profile = load_profile_doc(args.hw_profile)
        check_profile_applies(doc, args.hw_profile, cluster, dtype)
    else:
        profile = hw_profile()
    profile, shared = _shared_cores(profile, nproc, backend)
    plan_text, order = (args.plan, ()) if args.plan is not None else _recommended(model, sc, cluster, profile,
                                                                                   job_errors)
    plan = parse_plan(plan_text)
    order = _order(args.order, plan) or order
    if plan.gpus != nproc:
        raise _usage(f"--nproc {nproc} but plan '{plan}' uses {plan.gpus} GPUs; give --nproc {plan.gpus} "
                     f"or a plan whose degrees multiply to {nproc}")
    errs = plan_errors(plan, model, sc, nproc) + job_errors(plan)
    if errs:
        raise _usage(f"plan '{plan}': {errs[0]}")
    from .experiment import measure, prepare
    from .launch import RankFailed, in_torchrun
    from .procs import LauncherSignalled
    prep = prepare(model, sc, str(plan), cluster, profile, guidance=args.guidance, seed=args.seed,
                   repeats=args.repeats, warmup_runs=args.warmup_runs, tolerance=args.tolerance, order=order,
                   diffusers=diffusers)
    _check_memory(prep, model, sc, profile, nproc, backend)
    if shared:                  # every check passed: the ranks start now
        print(shared, file=sys.stderr)
    try:
        m = measure(prep, nproc, backend, timeout_s=args.timeout)
    except LauncherSignalled as e:
        print(f"error: {e}", file=sys.stderr)
        return 128 + e.signum
    except RankFailed as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted; the ranks were stopped", file=sys.stderr)
        return 130
    if note and m is not None:
        m.extra["prediction"] = note
    if m is not None and prep.prediction.block_times:     # measured blocks (`profile --model`)
        m.extra["block times"] = prep.prediction.block_times.removeprefix("block times: ")
    if in_torchrun():
        _report(args, m, sc, order)
        # Leave like a multiprocessing worker does: gloo's transport threads can still be
        # torn down by C++ static destructors at interpreter exit, which sometimes aborts
        # (SIGABRT) a rank that finished first; the process groups are already destroyed.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return _report(args, m, sc, order)


def _report(args, m, sc, order=()) -> int:
    if m is None:               # torchrun rank > 0: rank 0 reports
        return 0
    from .launch import in_torchrun
    from planner.layout import layout_for
    from planner.plan import parse_plan
    lay = layout_for(parse_plan(m.plan).base(), order)
    out = m.to_json() | {"scenario": sc.to_dict(), "recommended": not args.plan, "torchrun": in_torchrun(),
                         "layout_order": list(lay.order)}
    if args.report:
        from planner.report.run import write_run_report
        write_run_report(out, args.report)
    from .diffusers.options import write_out
    written = write_out(args, m)
    if args.json:
        print(json.dumps(out, indent=1, allow_nan=False))
    else:
        print(m.table())
        if len(lay.order) > 1:
            print(f"layout (inner < outer): {' < '.join(lay.order)}" + ("" if order else " (xDiT's order)"))
        if not args.plan:
            print("(plan recommended by the planner for this machine)")
        if args.report:
            print(f"report: {args.report}")
        if written:
            print(f"written: {written}")
    return 0
