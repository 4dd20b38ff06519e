"""`--weights DIR`: a local diffusers folder of the chosen model, checked before any rank
starts (torch-free).

    folder_errors(path, model_id) -> list of reasons the folder cannot serve model_id
    folder_configs(path, model_id) -> its PipelineConfigs (model_index.json + config.json files)

The folder must be a diffusers pipeline folder (model_index.json naming the model's
pipeline class), hold every component it lists (a config and weight files for each
model, tokenizer files for each tokenizer), and its denoiser must be the model's: the
same class, and the same value for every architecture field the published config sets
(a folder of another model, or of another size of the same family, is refused).
"""
from __future__ import annotations

from pathlib import Path

from . import configs as cfgs

WEIGHT_FILES = ("*.safetensors", "*.bin", "*.safetensors.index.json", "*.bin.index.json")
TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "spiece.model", "tokenizer_config.json")
# fields of the published denoiser config that fix the architecture (the rest may vary:
# sample sizes, dropout, version strings)
ARCH_KEYS = ("num_layers", "num_single_layers", "num_attention_heads", "attention_head_dim", "block_out_channels",
             "transformer_layers_per_block", "cross_attention_dim", "joint_attention_dim", "in_channels",
             "patch_size", "ffn_dim", "text_dim", "caption_channels", "guidance_embeds", "qk_norm")


def folder_configs(path: str, model_id: str) -> cfgs.PipelineConfigs:
    return cfgs.read_folder(Path(path), model_id)


def folder_errors(path: str, model_id: str) -> list[str]:
    root = Path(path)
    if not root.is_dir():
        return [f"--weights {path}: no such folder"]
    index = root / "model_index.json"
    if not index.is_file():
        return [f"--weights {path}: not a diffusers pipeline folder (no model_index.json)"]
    try:
        pc = cfgs.read_folder(root, model_id)
    except (OSError, ValueError) as e:
        return [f"--weights {path}: unreadable configs ({type(e).__name__}: {e})"]
    want = cfgs.pipeline_configs(model_id)
    if pc.pipeline != want.pipeline:
        return [f"--weights {path}: a {pc.pipeline or 'unnamed'} folder, but {model_id} is a {want.pipeline}"]
    errs = []
    for name, (lib, cls, _) in pc.components.items():
        sub = root / name
        if not sub.is_dir():
            errs.append(f"--weights {path}: component '{name}' ({cls}) is listed in model_index.json but missing")
        elif name.startswith("tokenizer"):
            if not any((sub / f).is_file() for f in TOKENIZER_FILES):
                errs.append(f"--weights {path}: tokenizer '{name}' has none of {', '.join(TOKENIZER_FILES)}")
        elif name != "scheduler":
            if not (sub / "config.json").is_file():
                errs.append(f"--weights {path}: component '{name}' has no config.json")
            elif not any(next(sub.glob(p), None) for p in WEIGHT_FILES):
                errs.append(f"--weights {path}: component '{name}' has no weight files (*.safetensors, *.bin)")
    if errs:
        return errs
    den = want.denoiser
    if den not in pc.components:
        return [f"--weights {path}: no '{den}' component, which {model_id} denoises with"]
    if pc.cls(den) != want.cls(den):
        return [f"--weights {path}: its {den} is a {pc.cls(den)}, but {model_id}'s is a {want.cls(den)}"]
    got, ref = pc.config(den), want.config(den)
    for key in ARCH_KEYS:
        if key in ref and key in got and _norm(got[key]) != _norm(ref[key]):
            return [f"--weights {path}: {den} {key}={got[key]!r}, but {model_id} has {key}={ref[key]!r} "
                    f"(a folder of another model?)"]
    return []


def _norm(v):
    return list(v) if isinstance(v, tuple) else v


