"""`python cli.py run`: run a plan for real on this machine and check the planner's prediction.

    python cli.py run [scenario options] [--plan STR] [--order DIM,...] [--nproc N]
                      [--backend gloo|nccl] [--repeats R] [--json]

Without --plan it runs the plan planner.search recommends for this machine, laid out as
its placement chose; --order lays the ranks out in another order (default xDiT's). It starts
the ranks itself (elastic launch on a free local port) or, started by torchrun, is one
of them. CPU: gloo, one thread per rank (and for the serial baseline), fp32 by default.
CUDA: nccl, bf16 by default. Bad options: one line on stderr, exit code 2; a failing
rank: one line naming it, exit code 1.
"""
from __future__ import annotations

import json
import os
import sys

DEFAULT_MODEL = "ref-dit-s"
DEFAULT_TOLERANCE = 0.05     # ParaDiGMS Picard tolerance (relative L2 change of a point)


def register(sub, common) -> None:
    p = sub.add_parser("run", help="run a plan with torch.distributed here and compare with the prediction")
    common.add_scenario_args(p)
    p.set_defaults(dtype=None, scope="denoise")
    p.add_argument("--plan", help="plan string (default: the planner's recommendation for this machine)")
    p.add_argument("--order", metavar="DIM,DIM,...",
                   help="layout order of the plan's parallel dimensions, inner to outer, e.g. cfg,ring "
                        "(default: xDiT's tp, sp, pp, cfg, dp; without --plan, the placement the planner chose)")
    p.add_argument("--nproc", type=int, help="ranks to start (default: the plan's GPU count, else the "
                   "CPU cores or CUDA devices)")
    p.add_argument("--backend", default=None, help="gloo (CPU, default) | nccl (CUDA)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs; the median is reported (default 3)")
    p.add_argument("--warmup-runs", type=int, default=1, help="untimed runs before them (default 1)")
    p.add_argument("--guidance", type=float, default=4.5, help="classifier-free guidance scale (default 4.5)")
    p.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE,
                   help=f"ParaDiGMS Picard tolerance, 0 = exact (default {DEFAULT_TOLERANCE})")
    p.add_argument("--seed", type=int, default=0, help="weights, noise and text embeddings (default 0)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds a collective may wait (default 120)")
    p.add_argument("--hw-profile", help="hardware profile (default: hw_profiles/local.json if present)")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.add_argument("--report", metavar="FILE.html",
                   help="also write an interactive HTML report: measured against predicted, time per step, fidelity")
    from .diffusers.options import add_options
    add_options(p)          # --scale, --weights, --prompt, --negative-prompt, --out (diffusers models)
    p.set_defaults(func=lambda args: cmd_run(args, common))


def _usage(msg: str):
    from planner.errors import UsageError
    return UsageError(msg)


def _check_options(args) -> str:
    """Validate what needs no model; returns the backend."""
    from planner.zoo.reference import PRESETS
    backend = args.backend or "gloo"
    if backend not in ("gloo", "nccl"):
        raise _usage(f"--backend {backend}: accepted: gloo, nccl")
    if args.model is None:
        args.model = DEFAULT_MODEL
    from .diffusers import options as diffusers_options
    if args.model not in PRESETS:
        if not diffusers_options.is_model(args.model):
            from .diffusers.configs import model_ids
            raise _usage(f"--model {args.model}: run executes the reference models ({', '.join(PRESETS)}) and the "
                         f"diffusers models {', '.join(model_ids())}")
        diffusers_options.check(args)
    elif args.scale or args.weights or args.out or args.cp != "auto":
        raise _usage(f"--scale, --weights, --out and --cp apply to diffusers models, not to {args.model}")
    if args.scope != "denoise":
        raise _usage(f"--scope {args.scope}: run times the denoising loop only (scope denoise)")
    if args.cluster or args.nodes != 1 or args.inter != "none" or args.intra:
        raise _usage("run measures this machine: --cluster, --nodes, --inter and --intra do not apply")
    for name in ("repeats", "nproc"):
        v = getattr(args, name)
        if v is not None and v < 1:
            raise _usage(f"--{name} {v}: must be >= 1")
    if args.warmup_runs < 0 or args.timeout <= 0 or args.tolerance < 0:
        raise _usage("--warmup-runs, --tolerance must be >= 0 and --timeout > 0")
    if args.report:      # refused before any rank starts, not after the run
        from planner.report.html import check_out_path
        check_out_path(args.report, (".html", ".htm"), "report")
    if backend == "nccl":
        import torch
        if not torch.cuda.is_available():
            raise _usage("--backend nccl needs CUDA, and torch sees no CUDA device here; use --backend gloo")
    elif args.gpu not in (None, "cpu"):
        raise _usage(f"--gpu {args.gpu}: a gloo run happens on this CPU; use --backend nccl for GPUs")
    return backend


def _nproc(args, backend: str) -> int:
    from .launch import in_torchrun
    if in_torchrun():
        n = int(os.environ["WORLD_SIZE"])
        if args.nproc not in (None, n):
            raise _usage(f"--nproc {args.nproc} but torchrun started {n} ranks")
        return n
    if args.nproc and args.gpus and args.nproc != args.gpus:
        raise _usage(f"--nproc {args.nproc} and --gpus {args.gpus} disagree")
    n = args.nproc or args.gpus
    if n:
        return n
    if args.plan:
        from planner.plan import parse_plan
        return parse_plan(args.plan).gpus
    if backend == "nccl":
        import torch
        return torch.cuda.device_count()
    return os.cpu_count() or 1


def _gpu_id(args, backend: str) -> str:
    if backend == "gloo":
        return "cpu"
    if args.gpu:
        return args.gpu
    import torch
    from planner.hardware import gpu_ids, load_gpu
    name = torch.cuda.get_device_name(0).lower()
    for gid in gpu_ids():
        if load_gpu(gid).name.lower() in name:
            return gid
    raise _usage(f"cannot tell which hw_profiles GPU '{name}' is; give --gpu (see `cli.py gpus`)")


def _recommended(model, sc, cluster, profile, job_errors) -> tuple[str, tuple[str, ...]]:
    """The planner's recommendation, or the best-ranked fitting plan the executor runs,
    with the layout order the placement chose for it (empty: xDiT's)."""
    from planner.search import search

    res = search(model, sc, cluster, profile)
    ranked = ([res.recommended] if res.recommended else []) + [p for p in res.ranked if p.fits]
    for pred in ranked:
        if not job_errors(pred.plan):
            placed = next((pl for pl in res.placements if pl.plan == pred.plan and pl.moved), None)
            return str(pred.plan), tuple(placed.order) if placed else ()
    raise _usage(f"the planner found no plan for {cluster.n} ranks that fits and that the executor can run")


def _order(text: str | None, plan) -> tuple[str, ...]:
    """--order as a tuple of the plan's dimensions (UsageError naming what is accepted)."""
    if not text:
        return ()
    from planner.layout import dimension_names
    dims = dimension_names(plan.plans())
    order = tuple(d.strip() for d in text.split(",") if d.strip())
    bad = [d for d in order if d not in dims]
    if bad or len(set(order)) != len(order) or not order:
        raise _usage(f"--order {text}: give distinct dimensions of plan '{plan}', inner to outer, "
                     f"separated by commas; accepted: {', '.join(dims) or 'none (the plan has one GPU)'}")
    return order


def cmd_run(args, common) -> int:
    backend = _check_options(args)
    nproc = _nproc(args, backend)
    if nproc < 1:
        raise _usage("no CUDA device to run on")
    args.gpu, args.gpus, args.intra = _gpu_id(args, backend), nproc, "shm" if backend == "gloo" else None
    if args.dtype is None:
        args.dtype = "fp32" if backend == "gloo" else "bf16"
    model, sc, cluster = common.build_inputs(args)
    from planner.legality import plan_errors
    from planner.plan import parse_plan

    from .experiment import hw_profile
    from .legality import job_errors as _job_errors

    def job_errors(plan):
        return _job_errors(model.id, sc.height, sc.frames, plan, scale=args.scale or "", width=sc.width,
                           text_tokens=sc.text_tokens or model.facts.text_tokens, weights=args.weights or "")
    diffusers, note = None, ""
    if args.scale:      # a diffusers model: the ModelSpec of what runs at this scale
        if args.plan:   # what the architecture cannot run is refused before torch is imported
            errs = plan_errors(parse_plan(args.plan), model, sc, nproc) + job_errors(parse_plan(args.plan))
            if errs:
                raise _usage(f"plan '{args.plan}': {errs[0]}")
        from .diffusers.options import model_spec
        model, note, diffusers = model_spec(args, model)
    profile = hw_profile(args.hw_profile)
    plan_text, order = (args.plan, ()) if args.plan else _recommended(model, sc, cluster, profile, job_errors)
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
    prep = prepare(model, sc, str(plan), cluster, profile, guidance=args.guidance, seed=args.seed,
                   repeats=args.repeats, warmup_runs=args.warmup_runs, tolerance=args.tolerance, order=order,
                   diffusers=diffusers)
    try:
        m = measure(prep, nproc, backend, timeout_s=args.timeout)
    except RankFailed as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted; the ranks were stopped", file=sys.stderr)
        return 130
    if note and m is not None:
        m.extra["prediction"] = note
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
