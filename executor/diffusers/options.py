"""`cli.py run --model ID` for the zoo's diffusers models: the options, their checks (before
any rank starts) and what the run writes.

    add_options(parser)        --scale, --weights, --prompt, --negative-prompt, --out
    check(args)                torch-free checks; fills the scale's scenario defaults
    model_spec(args, full)     the ModelSpec to predict with and the Job's diffusers fields
    write_out(args, m)         the decoded image (PNG) or video frames (a folder of PNGs)
"""
from __future__ import annotations

import os

from planner.errors import UsageError

from . import configs
from .scale import SCALES, scenario_defaults

DEFAULT_PROMPT = "a photograph of an astronaut riding a horse on the moon"


def add_options(p) -> None:
    g = p.add_argument_group("diffusers models (--model sdxl, sd3-medium, flux.1-dev, ...)")
    g.add_argument("--scale", default=None,
                   help="tiny (tests: seconds on one core) | small (CPU benchmarks: ~100 ms per denoiser step) | "
                        "full (the real architecture); default small, full with --weights")
    g.add_argument("--weights", metavar="DIR", help="a local diffusers folder of the model (default: random weights "
                   "from --seed, the same on every rank)")
    g.add_argument("--prompt", default=DEFAULT_PROMPT, help="the prompt (default: an astronaut riding a horse)")
    g.add_argument("--negative-prompt", default="", help="the unconditional branch's prompt (default empty)")
    g.add_argument("--out", metavar="FILE.png|DIR",
                   help="write the decoded image (PNG), or a video's frames into a folder")
    g.add_argument("--cp", default="auto", help="auto (default: Ulysses through diffusers' own ContextParallelConfig "
                   "on classes with a _cp_plan, e.g. Flux, Wan) | executor (the executor's Ulysses everywhere)")


def is_model(model_id: str) -> bool:
    return model_id in configs.model_ids()


def refusal(model_id: str) -> str:
    """Why `run` does not take model_id, in one line: a zoo model whose denoiser is not a
    diffusers class (Open-Sora: the zoo ships configs written for its own repository), or
    an id that is not a model at all."""
    folder = configs.ZOO_CONFIGS / model_id
    if model_id and (folder / "model_index.json").is_file():
        pc = configs.read_folder(folder, model_id)
        lib, cls, _ = pc.components[pc.denoiser]
        if lib != "diffusers":
            return (f"--model {model_id}: its denoiser {cls} is not a diffusers class (the zoo's configs follow "
                    f"its own repository; diffusers 0.42 has no such model), so run cannot build it: {model_id} is "
                    f"plan-only (cli.py plan --model {model_id})")
    return (f"--model {model_id}: not a model run executes; accepted (zoo models with a diffusers adapter): "
            f"{', '.join(configs.model_ids())}")


def check(args) -> None:
    """Refuse bad diffusers options (one line each); fill the scenario defaults of the scale."""
    from planner import zoo
    if args.weights:
        if args.scale not in (None, "full"):
            raise UsageError(f"--scale {args.scale} with --weights: a weights folder fixes the architecture "
                             f"(use --scale full or leave it out)")
        args.scale = "full"
        from .weights import folder_errors
        errs = folder_errors(args.weights, args.model)
        if errs:
            raise UsageError(errs[0])
        args.weights = os.path.abspath(args.weights)
    args.scale = args.scale or "small"
    if args.cp not in ("auto", "executor"):
        raise UsageError(f"--cp {args.cp}: accepted: auto, executor")
    if args.scale not in SCALES:
        raise UsageError(f"--scale {args.scale}: accepted: {', '.join(SCALES)}")
    facts = zoo.facts(args.model)
    d = scenario_defaults(facts, args.scale)
    if d is not None:
        args.height = args.height or d.height
        args.width = args.width or d.width
        args.frames = args.frames or d.frames
        args.steps = args.steps or d.steps
        if args.text_tokens is None:
            args.text_tokens = _text_tokens(args.model, d.text)
    if args.out:
        video = facts.arch.startswith("video")
        if video and args.out.lower().endswith(".png"):
            raise UsageError(f"--out {args.out}: {args.model} makes a video; give a folder for its frames")
        if not video and not args.out.lower().endswith(".png"):
            raise UsageError(f"--out {args.out}: give a .png file for the image")
        parent = os.path.dirname(os.path.abspath(args.out))
        if not os.path.isdir(parent):
            raise UsageError(f"--out {args.out}: folder {parent} does not exist")


def _text_tokens(model: str, t5: int) -> int:
    """Denoiser text tokens at a reduced scale: CLIP-only U-Nets keep 77, SD3 has 77 CLIP
    tokens before the T5 ones, diffusers' Latte always encodes 120 T5 tokens."""
    pc = configs.pipeline_configs(model)
    cls = pc.cls(pc.denoiser)
    if cls == "UNet2DConditionModel":
        return 77
    if cls in ("SD3Transformer2DModel", "HunyuanDiT2DModel"):      # CLIP / BERT tokens, then T5 ones
        return 77 + t5
    if cls == "LatteTransformer3DModel":
        return 120
    if cls == "DiTTransformer2DModel":      # class-conditioned: no text
        return 0
    if cls == "UNetSpatioTemporalConditionModel":      # one CLIP image embedding
        return 1
    return t5


def model_spec(args, full):
    """(ModelSpec for predict(), note, Job fields) of this diffusers run."""
    from .legality import latent_frames
    from .scale import scaled_configs
    from .spec import run_spec
    from .weights import folder_configs
    pc = (folder_configs(args.weights, args.model) if args.weights else
          scaled_configs(configs.pipeline_configs(args.model), args.scale, args.text_tokens or full.facts.text_tokens,
                         latent_frames(args.model, args.frames or full.facts.default_frames)))
    try:
        spec, note = run_spec(full, pc, (args.height or full.facts.default_height,
                                         args.width or full.facts.default_width), args.scale,
                              args.frames or full.facts.default_frames, args.text_tokens)
    except ValueError as e:
        raise UsageError(str(e)) from None
    fields = {"scale": args.scale, "weights": args.weights or "", "prompt": args.prompt,
              "negative_prompt": args.negative_prompt, "decode": True, "cp": args.cp}
    return spec, note, fields


def write_out(args, m) -> str | None:
    """Write rank 0's decoded pixels; returns what was written."""
    if not args.out or m.pixels is None:
        return None
    from PIL import Image
    px = m.pixels
    if px.ndim == 4:          # [B, H, W, 3]: the first image
        Image.fromarray(px[0]).save(args.out)
        return args.out
    os.makedirs(args.out, exist_ok=True)
    for i, frame in enumerate(px[0]):
        Image.fromarray(frame).save(os.path.join(args.out, f"frame{i:04d}.png"))
    return f"{args.out}/ ({px.shape[1]} frames)"
