"""`python cli.py profile`: measure this machine and write a hardware profile.

    python cli.py profile --quick                 # < 1 min; writes hw_profiles/local.json
    python cli.py profile --nproc 8 --out hw_profiles/h100x8.json
    python cli.py profile --model sd3-medium --scale small     # the model's own blocks (profiler/model.py)
    python cli.py plan --hw-profile hw_profiles/local.json ...

`profile --model ID` adds that model's block table to the profile file (replacing its
table at the same scale, keeping the rest): into an existing file of this device, dtype
and thread count it measures the model only; where --out does not exist yet it measures
the op curves and collectives first (as plain `profile`), then the model. Plain
`profile` over an existing file of the same device, dtype and threads keeps its tables.

Bad options: one line on stderr, exit code 2 (UsageError, as the other commands).
"""
from __future__ import annotations

from pathlib import Path

from planner.errors import UsageError

from planner.profile_io import LOCAL_PROFILE

DEFAULT_OUT = str(LOCAL_PROFILE)     # where `plan`/`run` look for it, whatever the working directory


def register(subparsers, common) -> None:
    from planner.hardware import gpu_ids, link_ids
    from planner.limits import choice, cores, option
    from .compute import TORCH_DTYPES
    p = subparsers.add_parser("profile", help="measure this machine and write a hardware profile",
                              description="Time GEMM, conv, attention, norm and elementwise ops on the "
                              "local device and the collectives between local processes; write the "
                              "profile that `plan --hw-profile` reads.")
    p.add_argument("--quick", action="store_true", help="fewer sizes and repeats (under a minute on a small host)")
    p.add_argument("--nproc", type=option("--nproc", 1, 1024), default=2,
                   help="processes (one per GPU) for the collectives (default 2; on CPU at most max(8, 4 x cores))")
    p.add_argument("--out", default=None, help=f"profile file to write (default {DEFAULT_OUT})")
    p.add_argument("--dtype", type=choice("--dtype", TORCH_DTYPES), default=None,
                   help="fp32 | bf16 | fp16 | tf32 (default fp32 on CPU, bf16 on CUDA)")
    p.add_argument("--threads", type=option("--threads", 1, cores()), default=None,
                   help=f"torch threads on CPU, 1..{cores()} (default 1: the executor runs one thread per rank)")
    p.add_argument("--device", type=choice("--device", ("cpu", "cuda")), default=None,
                   help="cpu | cuda (default: cuda if available)")
    p.add_argument("--link", type=choice("--link", link_ids()), default=None,
                   help="link id the collectives stand for (default: shm on CPU, the GPU's usual intra link, "
                        "e.g. nvswitch)")
    p.add_argument("--gpu-id", type=choice("--gpu-id", gpu_ids()), default=None,
                   help="hw_profiles/gpus id of the device, if its name is not recognised")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.add_argument("--json", action="store_true", help="print the profile document on stdout")
    p.add_argument("--report", metavar="FILE.html", help="also write an HTML report of the curves and their fits")
    from planner.profile_io import SCALES
    g = p.add_argument_group("a model's own blocks (--model; profiler/model.py)")
    g.add_argument("--model", help="time this zoo model's denoiser blocks (each distinct class at 1, 1/2, 1/4 and 1/8 "
                   "of its tokens), text encoders and VAE decode on its real diffusers classes, and add them to the "
                   "profile: the planner then uses them instead of the roofline (models with an executor adapter)")
    g.add_argument("--scale", type=choice("--scale", SCALES), default=None,
                   help="tiny | small | full, as `run --scale` (default small; full with --weights)")
    g.add_argument("--weights", metavar="DIR", help="a local diffusers folder of the model (default: random weights)")
    g.add_argument("--height", type=option("--height"), help="image height, 8..16384 (default: the scale's, as run)")
    g.add_argument("--width", type=option("--width"), help="image width, 8..16384 (default: the scale's)")
    g.add_argument("--frames", type=option("--frames"), help="video frames, 1..1024 (default: the scale's)")
    g.add_argument("--batch", type=option("--batch"), help="images per request, 1..1024 (default 1)")
    g.add_argument("--text-tokens", type=option("--text-tokens"), help="text tokens the denoiser attends to "
                   "(default: the scale's)")
    p.set_defaults(func=cmd_profile)


MODEL_ONLY = ("scale", "weights", "height", "width", "frames", "batch", "text_tokens")


def cmd_profile(args) -> int:
    import json
    import time

    from planner.errors import user_errors
    from planner.outfiles import check_out_path
    from planner.profile_io import save_profile

    from .run import ProfileOptions, profile_machine

    # every output is refused before minutes of measuring, not after
    out = check_out_path(args.out if args.out is not None else DEFAULT_OUT, (".json",), "profile")
    if args.report is not None:
        check_out_path(args.report, (".html", ".htm"), "report")
    t0 = time.perf_counter()
    opts = ProfileOptions(device=args.device, dtype=args.dtype, threads=args.threads, nproc=args.nproc,
                          link=args.link, preset="quick" if args.quick else "full", gpu_id=args.gpu_id,
                          name=out.stem, progress=not args.no_progress, argv=getattr(args, "argv", None))
    if args.model is None:
        given = [k for k in MODEL_ONLY if getattr(args, k) is not None]
        if given:
            flag = "--" + given[0].replace("_", "-")
            raise UsageError(f"{flag} applies to a model's blocks: give --model ID with it (or leave {flag} out)")
        old = _same_device_doc(out, opts)
        doc = profile_machine(opts)
        if old is not None and "blocks" in old:       # the model tables stay valid for this device
            doc["blocks"] = old["blocks"]
        doc["provenance"]["seconds"] = round(time.perf_counter() - t0, 2)
        table = spec = None
        ops_measured = True
    else:
        from .model_cli import profile_model
        doc, table, spec, ops_measured = profile_model(args, opts, out)
    try:
        save_profile(doc, out)
    except user_errors() as e:      # the path went bad while measuring: keep the measurements
        kept = _keep(doc)
        raise UsageError(f"{e}; the measurements are kept in {kept}") from None
    if args.report:
        from planner.report.profile import write_profile_report
        write_profile_report(doc, args.report)
    if args.json:
        print(json.dumps(doc, indent=1))
        return 0
    print(summary(doc, out) if ops_measured else
          f"wrote {out} ({doc['provenance'].get('device_name', doc['device']['kind'])}, as GPU id '{doc['device']['gpu_id']}', "
          f"{doc['device']['dtype']}; the op curves and collectives kept)")
    if table is not None:
        from .model import summary as model_summary
        print(f"blocks of {table['model']} --scale {table['scale']} ({table['provenance']['seconds']:.1f} s):")
        print("\n".join(model_summary(doc, table, spec)))
    if args.report:
        print(f"report: {args.report}")
    return 0


def _same_device_doc(out: Path, opts) -> dict | None:
    """The profile already at `out` if it is valid and of the device, dtype and threads
    about to be measured (its block tables are kept); else None (it is overwritten)."""
    from planner.errors import user_errors
    from planner.profile_io import load_profile_doc

    from .run import check_options
    if not out.is_file():
        return None
    try:
        doc, _ = load_profile_doc(out)
    except user_errors():
        return None
    device, gpu_id, dtype, threads = check_options(opts)
    dev = doc["device"]
    same = (dev["gpu_id"], dev["dtype"], dev.get("threads") if device == "cpu" else None) == \
        (gpu_id, dtype, threads if device == "cpu" else None)
    return doc if same else None


def _keep(doc: dict) -> str:
    """Write the profile to a new file in the temporary directory; its path."""
    import json
    import tempfile
    fd, path = tempfile.mkstemp(prefix="paradiff-profile-", suffix=".json")
    with open(fd, "w") as fh:
        json.dump(doc, fh, indent=1)
    return path


def summary(doc: dict, path: Path) -> str:
    """A few lines: where the profile went and what was measured."""
    dev = doc["device"]
    lines = [f"wrote {path} ({doc['provenance']['device_name']}, as GPU id '{dev['gpu_id']}', {dev['dtype']}"
             + (f", {dev['threads']} thread{'s' if dev['threads'] != 1 else ''}" if dev.get("threads") else "")
             + f"; {doc['provenance'].get('seconds', 0):.1f} s)"]
    comp = doc["compute"]
    lines.append(f"  launch overhead {comp['launch_us']:.1f} us")
    for cls, cv in comp["curves"].items():
        pts = cv["points"]
        unit = "B" if cls == "mem" else "FLOP"
        lines.append(f"  {cls:<5} efficiency {min(e for _, e in pts):.3f}..{max(e for _, e in pts):.3f} over "
                     f"{pts[0][0]:.3g}..{pts[-1][0]:.3g} {unit} (fit e_max {cv['e_max']:.3f}, t0 {cv['t0_us']:.1f} us)")
    comm = doc["comm"]
    if "skipped" in comm:
        lines.append(f"  collectives: skipped ({comm['skipped']})")
    else:
        t = comm.get("timing", {})
        if t.get("mode") == "interleaved":
            lines.append(f"  collectives timed interleaved with {t['between_us'] / 1e3:.1f} ms of compute per call "
                         "on every rank (as the executor's ranks issue them)")
        for c in comm["curves"]:
            f = c["fit"]
            lines.append(f"  {c['kind']:<14} n={c['nranks']} on {comm['link']}: latency {f['latency_us']:.0f} us, "
                         f"{f['bw_gbps']:.2f} GB/s (bus {f.get('bus_bw_gbps', 0):.2f} GB/s), peak measured "
                         f"{max(c['bw_gbps']):.2f} GB/s")
        for kind, why in comm.get("unsupported", {}).items():
            lines.append(f"  {kind}: not supported by {comm['backend']} ({why})")
    return "\n".join(lines)
