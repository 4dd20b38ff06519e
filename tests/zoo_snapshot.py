"""A fingerprint of every zoo ModelSpec at its default size, pinned in tests/data/zoo_specs.json.

Per model: every block's name with a digest of its kind, tokens, hidden, skip elements and
ops (each Op's full shape), and the same for the text encoders and the VAE decoder. The
executor maps diffusers submodules to these block names, so a rename is a break; a changed
digest is a changed cost. Regenerate after an intended change, and say why in the commit:

    python -m tests.zoo_snapshot          # rewrites tests/data/zoo_specs.json
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

PINNED = Path(__file__).parent / "data" / "zoo_specs.json"


def _digest(*parts) -> str:
    return hashlib.sha1(repr(parts).encode()).hexdigest()[:12]


def fingerprint(spec) -> dict:
    return {"blocks": [[b.name, _digest(b.kind, b.tokens, b.hidden, b.skip_elems, b.ops)] for b in spec.blocks],
            "text_encoders": [[s.name, _digest(s.params, s.ops)] for s in spec.text_encoders],
            "vae": [spec.vae_decoder.name, _digest(spec.vae_decoder.params, spec.vae_decoder.ops)],
            "latent_shape": list(spec.latent_shape), "tokens": spec.tokens,
            "params": spec.params, "flops": spec.flops()}


def snapshot() -> dict:
    from planner import zoo
    out = {}
    for mid in zoo.model_ids():
        f = zoo.facts(mid)
        out[mid] = fingerprint(zoo.build(mid, f.default_height, f.default_width, f.default_frames))
    return out


def write(path: Path = PINNED) -> None:
    lines = [f" {json.dumps(mid)}: {json.dumps(fp)}" for mid, fp in snapshot().items()]
    path.write_text("{\n" + ",\n".join(lines) + "\n}\n")


if __name__ == "__main__":
    write()
    print(f"wrote {PINNED}")
