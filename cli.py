#!/usr/bin/env python3
"""paradiff: plan, run and check parallel diffusion inference.

    python cli.py plan        rank the parallel plans for a model on a cluster
    python cli.py models      list the known models
    python cli.py gpus        list the known GPUs and links

Bad input gets one line on stderr and exit code 2.
"""
from __future__ import annotations

import argparse
import functools
import json
import signal
import sys

from pathlib import Path


def _defaults() -> dict:
    """The built-in default scenario, kept in pyproject.toml [tool.paradiff.default]."""
    import tomllib
    fallback = {"model": "pixart-alpha", "gpu": "l40", "gpus": 8, "intra": "pcie4-2socket"}
    try:
        conf = tomllib.loads((Path(__file__).parent / "pyproject.toml").read_text())
        return fallback | conf["tool"]["paradiff"]["default"]
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return fallback


DEFAULT = _defaults()


from planner.errors import UsageError


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad option is one line on stderr (and exit code 2), not usage text."""

    def error(self, message):
        sub = self.prog.split()[-1]
        where = "python cli.py" if sub == "cli.py" else f"python cli.py {sub}"
        self.exit(2, f"error: {message} (see `{where} --help`)\n")


# ---------------------------------------------------------------- shared options
def add_scenario_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("scenario")
    g.add_argument("--model", default=None, help=f"model id (default {DEFAULT['model']}; see `cli.py models`)")
    g.add_argument("--height", type=int, help="image height in pixels (default: the model's)")
    g.add_argument("--width", type=int, help="image width in pixels (default: the model's)")
    g.add_argument("--frames", type=int, help="video frames (default: the model's; 1 for images)")
    g.add_argument("--steps", type=int, help="denoising steps (default: the model's)")
    g.add_argument("--batch", type=int, default=1, help="images per request (default 1)")
    g.add_argument("--text-tokens", type=int, help="text tokens the denoiser attends to (default: the model's)")
    g.add_argument("--no-cfg", action="store_true", help="one guidance branch (guidance-distilled or cfg scale 1)")
    g.add_argument("--dtype", default=None,
                   help="bf16 | fp16 | fp32 (default bf16, or the dtype a --hw-profile was measured in)")
    g.add_argument("--scope", default="pipeline", help="pipeline (text encoders + denoise + VAE) | denoise")
    g.add_argument("--compiled", action="store_true", help="torch.compile / CUDA graphs (lower launch overhead)")
    g.add_argument("--vae-tiling", action="store_true", help="decode the VAE in spatial tiles (vae.enable_tiling())")
    g.add_argument("--cpu-offload", action="store_true",
                   help="one pipeline component on the GPU at a time (enable_model_cpu_offload())")
    c = p.add_argument_group("cluster")
    c.add_argument("--gpu", default=None, help=f"GPU id (default {DEFAULT['gpu']}; see `cli.py gpus`)")
    c.add_argument("--gpus", type=int, default=None, help=f"total GPUs (default {DEFAULT['gpus']})")
    c.add_argument("--nodes", type=int, default=1, help="machines (default 1)")
    c.add_argument("--intra", default=None, help="link inside a node: nvswitch | nvlink-bridge | pcie3 | pcie4 "
                   "| pcie4-2socket | pcie5 (default: the GPU's usual one)")
    c.add_argument("--inter", default="none", help="link between nodes: none | ethernet | ib-hdr | ib-ndr | roce")
    c.add_argument("--cluster", help="cluster file (JSON, docs/cluster-file.md) instead of --gpu/--gpus/...")


def build_inputs(args):
    """(ModelSpec, Scenario, Cluster) from the options; UsageError-like errors on bad input."""
    from planner import zoo
    from planner.cluster import build_cluster, load_cluster_file
    from planner.spec import DTYPE_BYTES, Scenario

    cluster_given = args.cluster or args.gpu or args.gpus or args.intra
    local = zoo.load_model_dir(args.model_dir, args.model) if getattr(args, "model_dir", None) else None
    model_id = local.facts.id if local else args.model or DEFAULT["model"]
    facts = local.facts if local else zoo.facts(model_id)
    if args.cluster:
        cluster = load_cluster_file(args.cluster)
    else:
        gpus = args.gpus if args.gpus is not None else (DEFAULT["gpus"] if not cluster_given else 1)
        intra = args.intra if (args.intra or cluster_given) else DEFAULT["intra"]
        cluster = build_cluster(args.gpu or DEFAULT["gpu"], gpus, args.nodes, intra, args.inter)
    for name in ("height", "width", "frames", "steps", "batch", "text_tokens"):
        v = getattr(args, name)
        if v is not None and v < 1:
            raise UsageError(f"--{name.replace('_', '-')} {v}: must be >= 1")
    args.dtype = args.dtype or "bf16"
    if args.dtype not in DTYPE_BYTES:
        raise UsageError(f"--dtype {args.dtype}: accepted: {', '.join(DTYPE_BYTES)}")
    if args.scope not in ("pipeline", "denoise"):
        raise UsageError(f"--scope {args.scope}: accepted: pipeline, denoise")
    sc = Scenario(model=model_id, height=args.height or facts.default_height,
                  width=args.width or facts.default_width, frames=args.frames or facts.default_frames,
                  steps=args.steps or facts.default_steps, batch=args.batch,
                  cfg=facts.cfg_default and not args.no_cfg, text_tokens=args.text_tokens,
                  dtype=args.dtype, scope=args.scope, compiled=args.compiled,
                  vae_tiling=getattr(args, "vae_tiling", False), cpu_offload=getattr(args, "cpu_offload", False))
    try:
        model = (local.build if local else functools.partial(zoo.build, model_id))(
            sc.height, sc.width, sc.frames, sc.text_tokens)
    except zoo.ZooError:
        raise
    except ValueError as e:   # impossible sizes for this model: the message names the value
        raise UsageError(str(e)) from None
    return model, sc, cluster


def load_hw_profile(path: str | None, args=None):
    """The measured profile given with --hw-profile, else the datasheet profile with the
    committed calibration. A measured profile's efficiencies are relative to the dtype it
    was measured in, so that dtype becomes the default --dtype."""
    from planner.hardware import default_profile
    if not path:
        return default_profile()
    from planner.profile_io import load_profile_doc
    doc, profile = load_profile_doc(path)
    if args is not None and getattr(args, "dtype", None) is None:
        args.dtype = doc["device"]["dtype"]
    return profile


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


def cmd_gpus(args) -> int:
    from planner.hardware import gpu_ids, link_ids, load_gpu, load_link
    gpus = [load_gpu(g) for g in gpu_ids()]
    if args.json:
        print(json.dumps({"gpus": [{"id": g.id, "name": g.name, "family": g.family,
                                    "memory_gib": g.memory_bytes / 2**30, "bf16_tflops": g.peak("bf16") / 1e12,
                                    "memory_bw_gbps": g.memory_bw / 1e9, "nvlink_gbps": g.nvlink_gbps}
                                   for g in gpus], "links": list(link_ids())}, indent=1))
        return 0
    print(f"{'id':<16} {'name':<22} {'family':<10} {'memory':>7} {'bf16 TFLOP/s':>12} {'HBM GB/s':>9} {'NVLink GB/s':>11}")
    for g in gpus:
        print(f"{g.id:<16} {g.name:<22} {g.family:<10} {g.memory_bytes / 2**30:>5.0f}GB {g.peak('bf16') / 1e12:>12.1f}"
              f" {g.memory_bw / 1e9:>9.0f} {g.nvlink_gbps or '-':>11}")
    print("\nlinks: " + ", ".join(link_ids()) + "   (intra ids: nvswitch nvlink-bridge pcie3 pcie4 pcie4-2socket "
          "pcie5; inter ids: none ethernet ib-hdr ib-ndr roce)")
    return 0


# ---------------------------------------------------------------- main
# Commands that live beside the code they drive. Each module has
# register(subparsers, common) where common gives add_scenario_args and build_inputs.
COMMAND_MODULES: tuple[str, ...] = ("planner.plan_cli", "profiler.cli", "planner.validate_cli", "planner.report.cli",
                                    "executor.cli")


def parser() -> argparse.ArgumentParser:
    ap = OneLineParser(prog="cli.py", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="command", metavar="command", parser_class=OneLineParser)
    import importlib
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub, sys.modules[__name__])
    m = sub.add_parser("models", help="list the known models")
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=cmd_models)
    g = sub.add_parser("gpus", help="list the known GPUs and links")
    g.add_argument("--json", action="store_true")
    g.set_defaults(func=cmd_gpus)
    return ap


def main(argv=None) -> int:
    if hasattr(signal, "SIGPIPE"):   # `cli.py plan | head` ends quietly, like other Unix tools
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = parser()
    if not argv or argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
        argv = ["plan"] + argv      # the main job is the default command
    args = ap.parse_args(argv)
    from planner.errors import user_errors
    try:
        return args.func(args)
    except user_errors() as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
