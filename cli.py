#!/usr/bin/env python3
"""paradiff: plan, run and check parallel diffusion inference.

    python cli.py plan        rank the parallel plans for a model on a cluster
    python cli.py models      list the known models
    python cli.py gpus        list the known GPUs and links

Bad input gets one line on stderr and exit code 2.
"""
from __future__ import annotations

import os
import signal
import sys

if __name__ == "__main__":
    # Ctrl-C while the interpreter still imports (before main() can catch it): one line,
    # exit 130, no traceback; main() puts Python's KeyboardInterrupt back
    signal.signal(signal.SIGINT, lambda *_: (sys.stderr.write("error: interrupted\n"), os._exit(130)))

import argparse  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402

from planner.errors import UsageError  # noqa: E402
from planner.inputs import DEFAULT, SCOPES  # noqa: E402
from planner.limits import choice, option  # noqa: E402


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad option is one line on stderr (and exit code 2), not usage text."""

    def error(self, message):
        sub = self.prog.split()[-1]
        where = "python cli.py" if sub == "cli.py" else f"python cli.py {sub}"
        # planner.limits' types write whole messages ("--steps 0: must be ..."): no prefix
        m = re.fullmatch(r"argument ([^:]+): (.*)", message, re.S)
        if m and m[2].startswith(tuple(f"{n} " for n in m[1].split("/"))):
            message = m[2]
        elif m and (v := re.fullmatch(r"ignored explicit argument '(.*)'", m[2], re.S)):
            flag = m[1].split("/")[-1]
            message = f"{flag}={v[1]}: {flag} is a switch and takes no value"
        self.exit(2, f"error: {' '.join(message.split())} (see `{where} --help`)\n")


# ---------------------------------------------------------------- shared options
def add_size_args(g) -> None:
    """The sizes of a scenario (plan and run): checked against planner.limits.BOUNDS."""
    g.add_argument("--height", type=option("--height"), help="image height in pixels, 8..16384 (default: the model's)")
    g.add_argument("--width", type=option("--width"), help="image width in pixels, 8..16384 (default: the model's)")
    g.add_argument("--frames", type=option("--frames"), help="video frames, 1..1024 (default: the model's; 1 for images)")
    g.add_argument("--steps", type=option("--steps"), help="denoising steps, 1..1000 (default: the model's)")
    g.add_argument("--batch", type=option("--batch"), help="images per request, 1..1024 (default 1)")
    g.add_argument("--text-tokens", type=option("--text-tokens"),
                   help="text tokens the denoiser attends to, 0..4096 (default: the model's)")
    g.add_argument("--no-cfg", action="store_true", help="one guidance branch (guidance-distilled or cfg scale 1)")


def add_scenario_args(p: argparse.ArgumentParser) -> None:
    from planner.cluster import INTER_IDS, INTRA_IDS
    g = p.add_argument_group("scenario")
    g.add_argument("--model", default=None, help=f"model id (default {DEFAULT.model}; see `cli.py models`)")
    add_size_args(g)
    g.add_argument("--dtype", default=None, help="bf16 | fp16 | fp32 | tf32 | fp8, where the GPUs have it (default "
                   "bf16, fp16 on GPUs without bf16, or the dtype a --hw-profile was measured in)")
    g.add_argument("--scope", type=choice("--scope", SCOPES), default="pipeline",
                   help="pipeline (text encoders + denoise + VAE) | denoise (default pipeline)")
    g.add_argument("--compiled", action="store_true", help="torch.compile / CUDA graphs (lower launch overhead)")
    g.add_argument("--vae-tiling", action="store_true", help="decode the VAE in spatial tiles (vae.enable_tiling())")
    g.add_argument("--cpu-offload", action="store_true",
                   help="one pipeline component on the GPU at a time (enable_model_cpu_offload())")
    c = p.add_argument_group("cluster (or --cluster FILE)")
    c.add_argument("--gpu", default=None, help=f"GPU id (default {DEFAULT.gpu}; see `cli.py gpus`)")
    c.add_argument("--gpus", type=option("--gpus"), default=None, help=f"total GPUs, 1..1024 (default {DEFAULT.gpus})")
    c.add_argument("--nodes", type=option("--nodes"), default=None, help="machines (default 1); needs --inter")
    c.add_argument("--intra", type=choice("--intra", INTRA_IDS), default=None,
                   help=f"link inside a node: {' | '.join(INTRA_IDS)} (default: the GPU's usual one; "
                        f"{DEFAULT.intra} for {DEFAULT.gpu}, as in the default scenario)")
    c.add_argument("--inter", type=choice("--inter", INTER_IDS), default=None,
                   help=f"link between nodes, with --nodes N > 1: {' | '.join(INTER_IDS[1:])}")
    c.add_argument("--cluster", help="cluster file (JSON, docs/cluster-file.md) instead of --gpu/--gpus/--nodes/"
                   "--intra/--inter")


def build_inputs(args, profile_doc: dict | None = None):
    """(ModelSpec, Scenario, Cluster) from plan's options (planner.inputs checks them); a
    --hw-profile document must be of a GPU in the cluster, and gives the default dtype."""
    from planner import inputs
    from planner.profile_io import check_profile_applies
    cluster = inputs.cluster(args.gpu, args.gpus, args.nodes, args.intra, args.inter, args.cluster)
    dtype = args.dtype if args.dtype is not None else (
        profile_doc["device"]["dtype"] if profile_doc else inputs.default_dtype(cluster))
    inputs.check_dtype(cluster, dtype)
    if profile_doc is not None:
        check_profile_applies(profile_doc, args.hw_profile, cluster, dtype)
    local = None
    if getattr(args, "model_dir", None) is not None:     # plan --model-dir: a local diffusers folder
        from planner import zoo
        local = zoo.load_model_dir(args.model_dir, args.model)
    model, sc = inputs.scenario(DEFAULT.model if args.model is None else args.model, height=args.height,
                                width=args.width, frames=args.frames, steps=args.steps, batch=args.batch,
                                text_tokens=args.text_tokens, cfg=False if args.no_cfg else None,
                                dtype=dtype, scope=args.scope, compiled=args.compiled, local=local,
                                vae_tiling=getattr(args, "vae_tiling", False),
                                cpu_offload=getattr(args, "cpu_offload", False))
    return model, sc, cluster


def load_hw_profile(path: str | None):
    """(document or None, Profile): the measured profile given with --hw-profile, else the
    datasheet profile with the committed calibration."""
    from planner.hardware import default_profile
    if path is None:
        return None, default_profile()
    if not path.strip():
        raise UsageError("--hw-profile '': give a profile file (written by `cli.py profile`)")
    from planner.profile_io import load_profile_doc
    return load_profile_doc(path)


# How far a time-limited integer program got (planner/ilp/solver.SolveInfo): it depends on
# the machine's speed and load, like "seconds". The solution itself does not: the schedule
# program is warm-started from its exact DP, and the others finish well within their limits.
SOLVER_PROGRESS = ("status", "bound", "gap")


def without_timings(doc):
    """The document without its wall-clock fields (every "seconds" key, and the progress of
    time-limited solves): the same input gives the same bytes (plan --timings keeps them)."""
    if isinstance(doc, dict):
        solve_info = "solver" in doc and "bound" in doc and "gap" in doc
        return {k: without_timings(v) for k, v in doc.items()
                if k != "seconds" and not (solve_info and k in SOLVER_PROGRESS)}
    if isinstance(doc, list):
        return [without_timings(v) for v in doc]
    return doc


# ---------------------------------------------------------------- listings
def cmd_models(args) -> int:
    from planner import zoo
    rows = []
    for mid in zoo.model_ids():
        f = zoo.facts(mid)
        m = zoo.build(mid, f.default_height, f.default_width, f.default_frames)
        rows.append({"id": mid, "name": f.name, "arch": f.arch, "params_B": round(m.params / 1e9, 3),
                     "tflops_per_forward": round(m.flops() / 1e12, 2), "cfg": f.cfg_default,
                     "default": f"{f.default_height}x{f.default_width}" + (f"x{f.default_frames}f" if f.default_frames > 1 else ""),
                     "steps": f.default_steps, "blocks": len(m.blocks), "heads": list(m.attention_heads())})
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(f"{'id':<18} {'params':>8} {'TFLOP/fwd':>10} {'cfg':>4} {'default':>14} {'steps':>5} {'blocks':>6}  arch")
    for r in rows:
        print(f"{r['id']:<18} {r['params_B']:>7.2f}B {r['tflops_per_forward']:>10.1f} {'yes' if r['cfg'] else 'no':>4}"
              f" {r['default']:>14} {r['steps']:>5} {r['blocks']:>6}  {r['arch']}")
    return 0


def _tflops(g, dtype: str) -> float | None:
    """The GPU's own peak in dtype (None where it has none: bf16 on Volta and Turing)."""
    peak = dict(g.peak_flops).get(dtype)
    return None if peak is None else peak / 1e12


def cmd_gpus(args) -> int:
    from planner.hardware import gpu_ids, link_ids, load_gpu
    gpus = [load_gpu(g) for g in gpu_ids()]
    if args.json:
        print(json.dumps({"gpus": [{"id": g.id, "name": g.name, "family": g.family,
                                    "memory_gib": g.memory_bytes / 2**30, "bf16_tflops": _tflops(g, "bf16"),
                                    "memory_bw_gbps": g.memory_bw / 1e9, "nvlink_gbps": g.nvlink_gbps}
                                   for g in gpus], "links": list(link_ids())}, indent=1))
        return 0
    print(f"{'id':<16} {'name':<22} {'family':<10} {'memory':>7} {'bf16 TFLOP/s':>12} {'HBM GB/s':>9} {'NVLink GB/s':>11}")
    for g in gpus:
        bf16 = _tflops(g, "bf16")
        print(f"{g.id:<16} {g.name:<22} {g.family:<10} {g.memory_bytes / 2**30:>5.0f}GB "
              f"{'-' if bf16 is None else f'{bf16:.1f}':>12}"
              f" {g.memory_bw / 1e9:>9.0f} {g.nvlink_gbps or '-':>11}")
    print("\nlinks: " + ", ".join(link_ids()) + "   (intra ids: nvswitch nvlink-bridge pcie3 pcie4 pcie4-2socket "
          "pcie5; inter ids: none ethernet ib-hdr ib-ndr roce)")
    return 0


# ---------------------------------------------------------------- main
# Commands that live beside the code they drive: command -> module with
# register(subparsers, common), where common gives add_scenario_args and build_inputs.
COMMANDS: dict[str, str] = {"plan": "planner.plan_cli", "profile": "profiler.cli", "validate": "planner.validate_cli",
                            "report": "planner.report.cli", "run": "executor.cli"}
COMMAND_MODULES: tuple[str, ...] = tuple(COMMANDS.values())


def parser(command: str | None = None) -> argparse.ArgumentParser:
    """The CLI's parser; with a known `command`, only that command's module is imported
    (plan, the main job, does not pay for the profiler's and the executor's imports)."""
    ap = OneLineParser(prog="cli.py", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="command", metavar="command", parser_class=OneLineParser)
    import importlib
    for name, module in COMMANDS.items():
        if command is None or command not in COMMANDS or name == command:
            importlib.import_module(module).register(sub, sys.modules[__name__])
    m = sub.add_parser("models", help="list the known models")
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=cmd_models)
    g = sub.add_parser("gpus", help="list the known GPUs and links")
    g.add_argument("--json", action="store_true")
    g.set_defaults(func=cmd_gpus)
    return ap


def main(argv=None) -> int:
    """Exit codes: 0 done, 1 a run failed (a rank died, measurements failed), 2 bad input
    (one line on stderr, before any work), 130 interrupted (Ctrl-C; no rank is left)."""
    from planner.errors import user_errors
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if not argv or argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
            argv = ["plan"] + argv      # the main job is the default command
        args = parser(argv[0]).parse_args(argv)
        args.argv = ["cli.py"] + argv     # the command as given (provenance of what it writes)
        return args.func(args)
    except KeyboardInterrupt:        # first: user_errors() imports modules the interrupt may have cut short
        print("error: interrupted", file=sys.stderr)
        return 130
    except user_errors() as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    if hasattr(signal, "SIGPIPE"):   # `cli.py plan | head` ends quietly, like other Unix tools
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.exit(main())
