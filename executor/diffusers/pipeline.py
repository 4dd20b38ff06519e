"""A model's whole diffusers pipeline: denoiser, text encoders, tokenizers and VAE.

    Pipeline(model_id, scale, weights, seed, dtype, device, frames, text_tokens)
        .denoiser()          a fresh denoiser module (the diffusers class), on the device
        .encode(prompt, negative_prompt) -> Conditioning   the pipeline's own encode_prompt
        .decode(latent)      uint8 frames [B, (F,) H, W, 3] through the pipeline's VAE
        .describe()          class names, where the weights come from, the scale

Without `weights` every component is built from its config (scale.py shrinks them) with
random weights from a fixed seed, the same on every rank; tokenizers are built in memory
(a byte-level vocabulary that fits the shrunk or real encoder: nothing is downloaded).
With `weights` (a local diffusers folder, weights.py checks it) every component comes
from that folder through from_pretrained(..., local_files_only=True).

Which encoder outputs the denoiser reads is the pipeline's business: encode() calls the
diffusers pipeline's encode_prompt and keeps what its __call__ hands the denoiser.
"""
from __future__ import annotations

import inspect
import warnings

import torch

from ..blocks import Conditioning
from . import configs as cfgs
from .scale import family_of, scaled_configs

# latent layout facts of each family: (patch, flow matching, prediction type)
LATENT = {"unet": (1, False, "epsilon"), "sd3": (2, True, "flow"), "flux": (2, True, "flow"),
          "pixart": (2, False, "epsilon"), "wan": (2, True, "flow"), "cogvideox": (2, False, "v_prediction"),
          "latte": (2, False, "epsilon"), "dit": (2, False, "epsilon"), "animatediff": (1, False, "epsilon"),
          "hunyuandit": (2, False, "v_prediction"), "mochi": (2, True, "flow"), "hunyuanvideo": (2, True, "flow"),
          "svd": (1, False, "v_prediction")}
# families whose module (executor/diffusers/<family>.py) brings its own encode(pipeline,
# prompt, negative) -> Conditioning and decode(pipeline, latent) -> uint8 pixels
OWN_IO = ("dit", "animatediff", "hunyuandit", "mochi", "hunyuanvideo", "svd")
# transformers config classes that the model class name does not spell
CONFIG_CLASSES = {"BertModel": "BertConfig", "LlamaModel": "LlamaConfig",
                  "CLIPVisionModelWithProjection": "CLIPVisionConfig"}
# video families whose latent is [B, C, F, H, W], split by whole frames (runtime.Runtime)
VIDEO = ("wan", "cogvideox", "latte", "mochi", "hunyuanvideo")
# video U-Nets: split by rows of every frame like an image, so their latent is 4D with the
# frames folded into the channels, [B, C x F, H, W] (animatediff.py)
FOLDED = ("animatediff", "svd")
# components that belong to the denoiser (built with it, on the meta device in .pipe)
DENOISER_PARTS = ("motion_adapter",)
CLIP_TOKENS = 77


def t5_tokens(family: str, text_tokens: int) -> int:
    """T5 tokens the pipeline's encode_prompt makes for `text_tokens` denoiser text tokens."""
    return text_tokens - CLIP_TOKENS if family == "sd3" else text_tokens


# ---------------------------------------------------------------- tokenizers in memory
def byte_tokenizer(kind: str, vocab_size: int, max_length: int):
    """A fast tokenizer with one token per UTF-8 byte (GPT-2's byte alphabet) and the
    special tokens of a CLIP ("clip": start/end of text, padding at the top of the
    vocabulary, so CLIP's pooled-token rule finds the end token), T5 ("t5": <pad> 0,
    </s> 1, <unk> 2; also for BERT) or LLaMA ("llama": <pad> 0, a begin-of-text token 1
    first, no end token) tokenizer. Different prompts give different ids; nothing is read
    from disk."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    if kind == "clip":
        base, special = 0, {"<|startoftext|>": vocab_size - 3, "<|pad|>": vocab_size - 2,
                            "<|endoftext|>": vocab_size - 1}
    elif kind == "llama":
        base, special = 3, {"<pad>": 0, "<|begin_of_text|>": 1, "<unk>": 2}
    else:
        base, special = 3, {"<pad>": 0, "</s>": 1, "<unk>": 2}
    vocab = {c: base + i for i, c in enumerate(alphabet)} | special
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    if kind == "clip":
        tok.post_processor = processors.TemplateProcessing(
            single="<|startoftext|> $A <|endoftext|>",
            special_tokens=[("<|startoftext|>", vocab_size - 3), ("<|endoftext|>", vocab_size - 1)])
        names = {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "pad_token": "<|pad|>",
                 "unk_token": "<|endoftext|>"}
    elif kind == "llama":
        tok.post_processor = processors.TemplateProcessing(single="<|begin_of_text|> $A",
                                                           special_tokens=[("<|begin_of_text|>", 1)])
        names = {"bos_token": "<|begin_of_text|>", "pad_token": "<pad>", "unk_token": "<unk>"}
    else:
        tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
        names = {"eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"}
    return PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=max_length, **names)


# ---------------------------------------------------------------- the pipeline
class Pipeline:
    def __init__(self, model_id: str, scale: str = "tiny", weights: str = "", seed: int = 0,
                 dtype: torch.dtype = torch.float32, device: str = "cpu", frames: int = 1, text_tokens: int = 77,
                 image_size: tuple[int, int] = (128, 128)):
        from .weights import folder_configs
        _quiet()
        self.model_id, self.scale, self.weights, self.seed = model_id, scale, weights, seed
        self.dtype, self.device = dtype, torch.device(device)
        base = folder_configs(weights, model_id) if weights else cfgs.pipeline_configs(model_id)
        self.family = family_of(base)
        self.frames, self.text_tokens = frames, text_tokens
        self.image_size = image_size          # pixels (SVD draws its conditioning image at this size)
        self.configs = base if weights else scaled_configs(base, scale, text_tokens, frames)
        self.patch, self.flow, self.prediction = LATENT[self.family]
        self._pipe = None

    # ---- components
    def _component(self, name: str, offset: int):
        lib, cls, cfg = self.configs.components[name]
        module = __import__(lib)
        klass = getattr(module, cls)
        if self.weights:
            if name.startswith("tokenizer"):
                return klass.from_pretrained(self.weights, subfolder=name, local_files_only=True)
            if name == "scheduler":
                return klass.from_pretrained(self.weights, subfolder=name, local_files_only=True)
            m = klass.from_pretrained(self.weights, subfolder=name, local_files_only=True, torch_dtype=self.dtype)
            return m.to(self.device).eval().requires_grad_(False)
        if name == "scheduler":
            return klass.from_config(cfg)
        if name.startswith("tokenizer"):
            enc = self.configs.config(name.replace("tokenizer", "text_encoder"))
            enc_cls = self.configs.cls(name.replace("tokenizer", "text_encoder"))
            kind = "clip" if "CLIP" in enc_cls else "llama" if "Llama" in enc_cls else "t5"
            return byte_tokenizer(kind, enc["vocab_size"], {"clip": CLIP_TOKENS, "llama": 4096}.get(kind, 512))
        cfg = {k: v for k, v in cfg.items() if k not in ("torch_dtype", "dtype")}     # the run's dtype decides
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed * 1000 + offset)
            if lib == "transformers" and cls in CONFIG_CLASSES:
                m = klass(getattr(module, CONFIG_CLASSES[cls])(**cfg))
            elif lib == "transformers":
                config_cls = getattr(module, cls.replace("EncoderModel", "Config").replace("TextModelWithProjection",
                                                                                            "TextConfig")
                                     .replace("TextModel", "TextConfig"))
                m = klass(config_cls(**cfg))
            else:
                m = klass.from_config(cfg)
        if self.dtype != torch.float32:
            m = m.to(self.dtype)
        return m.to(self.device).eval().requires_grad_(False)

    def denoiser(self):
        """A fresh denoiser (every call builds it again: strategies slice and drop its weights)."""
        own = self._own_io()
        if own is not None and hasattr(own, "make_denoiser"):
            return own.make_denoiser(self)
        return self._component(self.configs.denoiser, 1)

    @property
    def video(self) -> bool:
        """Whether the executor's latent is [B, C, F, H, W], split by whole frames."""
        return self.family in VIDEO

    @property
    def latent_channels(self) -> int:
        """Channels of the executor's latent (video U-Nets: latent channels x frames)."""
        vae = self.configs.config("vae")
        ch = vae.get("latent_channels") or vae.get("z_dim")
        return ch * self.frames if self.family in FOLDED else ch

    @property
    def pipe(self):
        """The diffusers pipeline object (text encoders, tokenizers, VAE, scheduler; the
        denoiser is the one the strategies run, so the pipeline gets a copy of its config
        on the meta device: encode_prompt and decoding never call it)."""
        if self._pipe is None:
            import diffusers
            parts = {}
            own = self._own_io()
            for k, name in enumerate(sorted(self.configs.components)):
                if name.startswith(("safety_checker", "feature_extractor")) or name in DENOISER_PARTS:
                    continue                     # not part of generation (SD1.5's NSFW filter), or the denoiser's
                if name == self.configs.denoiser and own is not None and hasattr(own, "meta_denoiser"):
                    parts[name] = own.meta_denoiser(self.configs)
                elif name == self.configs.denoiser:
                    lib, cls, cfg = self.configs.components[name]
                    with torch.device("meta"):
                        parts[name] = getattr(diffusers, cls).from_config(cfg)
                else:
                    parts[name] = self._component(name, 2 + k)
            cls = getattr(diffusers, self.configs.pipeline)
            params = inspect.signature(cls.__init__).parameters
            for name, par in params.items():     # SD1.5's safety checker and feature extractor: none
                if name not in parts and name != "self" and par.default is inspect.Parameter.empty:
                    parts[name] = None
            if "requires_safety_checker" in params:
                parts["requires_safety_checker"] = False
            self._pipe = cls(**{k: v for k, v in parts.items() if k in params})
        return self._pipe

    # ---- text
    def _own_io(self):
        import importlib
        return importlib.import_module(f"{__package__}.{self.family}") if self.family in OWN_IO else None

    @torch.no_grad()
    def encode(self, prompt: str, negative: str = "") -> Conditioning:
        if hasattr(self._own_io(), "encode"):
            return self._own_io().encode(self, prompt, negative)
        p, fam, dev = self.pipe, self.family, self.device
        t5 = t5_tokens(fam, self.text_tokens)
        pooled = upooled = None
        if fam == "unet" and "text_encoder_2" in self.configs.components:
            c, u, pooled, upooled = p.encode_prompt(prompt, device=dev, do_classifier_free_guidance=True,
                                                    negative_prompt=negative)
        elif fam == "unet":
            c, u = p.encode_prompt(prompt, dev, 1, True, negative_prompt=negative)
        elif fam == "sd3":
            c, u, pooled, upooled = p.encode_prompt(prompt, None, None, device=dev, do_classifier_free_guidance=True,
                                                    negative_prompt=negative, max_sequence_length=t5)
        elif fam == "flux":
            c, pooled, _ = p.encode_prompt(prompt, device=dev, max_sequence_length=t5)
            u, upooled = c, pooled                       # guidance-distilled: no unconditional branch
        elif fam == "pixart":
            c, cm, u, um = p.encode_prompt(prompt, True, negative_prompt=negative, device=dev,
                                           clean_caption=False, max_sequence_length=t5)
            c, u = (torch.cat([e, m[..., None].to(e.dtype)], dim=-1) for e, m in ((c, cm), (u, um)))
        elif fam == "latte":
            c, u = p.encode_prompt(prompt, True, negative_prompt=negative, device=dev, clean_caption=False,
                                   mask_feature=False)
        else:      # wan, cogvideox
            c, u = p.encode_prompt(prompt, negative_prompt=negative, do_classifier_free_guidance=True,
                                   max_sequence_length=t5, device=dev)
        c, u = c[0].to(self.dtype), u[0].to(self.dtype)
        if pooled is None:
            return Conditioning(c, u)
        return Conditioning(c, u, pooled[0].to(self.dtype), upooled[0].to(self.dtype))

    # ---- pixels
    @torch.no_grad()
    def decode(self, latent: torch.Tensor):
        """The VAE decode of the final latent as the pipeline does it, uint8 [B, (F,) H, W, 3]."""
        if hasattr(self._own_io(), "decode"):
            return self._own_io().decode(self, latent)
        p, fam = self.pipe, self.family
        vae = p.vae
        upcast = getattr(vae.config, "force_upcast", False) and self.dtype != torch.float32
        dtype = torch.float32 if upcast else next(vae.parameters()).dtype
        if upcast:
            vae = vae.float()
        z = latent.to(self.device, dtype)
        if fam == "wan":
            mean = torch.tensor(vae.config.latents_mean).view(1, -1, 1, 1, 1).to(z)
            std = 1.0 / torch.tensor(vae.config.latents_std).view(1, -1, 1, 1, 1).to(z)
            video = vae.decode(z / std + mean, return_dict=False)[0]
            return uint8(p.video_processor.postprocess_video(video, output_type="pt"), video=True)
        if fam == "cogvideox":
            video = vae.decode(z / vae.config.scaling_factor, return_dict=False)[0]
            return uint8(p.video_processor.postprocess_video(video, output_type="pt"), video=True)
        if fam == "latte":
            b, ch, fr, h, w = z.shape
            frames = vae.decode(z.transpose(1, 2).reshape(b * fr, ch, h, w) / vae.config.scaling_factor,
                                return_dict=False)[0]
            frames = (frames / 2 + 0.5).clamp(0, 1)
            return uint8(frames.view(b, fr, *frames.shape[1:]), video=True)
        z = z / vae.config.scaling_factor + (getattr(vae.config, "shift_factor", None) or 0.0)
        image = vae.decode(z, return_dict=False)[0]
        return uint8(p.image_processor.postprocess(image, output_type="pt"), video=False)

    def describe(self) -> dict:
        comps = self.configs.components
        return {"pipeline": self.configs.pipeline, "denoiser": comps[self.configs.denoiser][1],
                "text_encoders": [comps[n][1] for n in self.configs.text_encoders()],
                "vae": comps["vae"][1], "scale": "full" if self.weights else self.scale,
                "weights": self.weights or f"random (seed {self.seed})", "configs": self.configs.source}


def _quiet() -> None:
    """diffusers and transformers warn per call about what this run does on purpose (prompts
    truncated to the scenario's text length, the meta-device denoiser of the pipeline
    object, image processors without torchvision): errors only."""
    import diffusers
    import transformers
    diffusers.utils.logging.set_verbosity_error()
    transformers.utils.logging.set_verbosity_error()
    # MochiRoPE asks CPU autocast for float32, which CPU autocast refuses (and computes in float32)
    warnings.filterwarnings("ignore", message="In CPU autocast, but the target dtype is not supported")


def uint8(x: torch.Tensor, video: bool):
    """[B, (F,) C, H, W] in [0, 1] -> uint8 [B, (F,) H, W, C]."""
    x = (x.float().clamp(0, 1) * 255).round().to(torch.uint8).cpu()
    return x.permute(0, 1, 3, 4, 2).numpy() if video else x.permute(0, 2, 3, 1).numpy()
