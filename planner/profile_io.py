"""Reading, checking and writing measured hardware profiles (written by `cli.py profile`).

No torch here: the planner must load a profile on a machine without it.

A profile file (JSON, format "paradiff-hw-profile", version 1):

    {"format": "paradiff-hw-profile", "version": 1, "name": "local",
     "provenance": {...free-form: date, host, device name, torch, command...},
     "device": {"kind": "cpu"|"cuda", "gpu_id": <hw_profiles/gpus id>, "dtype": "fp32",
                "threads": 1, "peak_flops": FLOP/s, "memory_bw": bytes/s},
     "compute": {"launch_us": 1.8,
                 "concurrency": {"nproc": 2, "alone_us": .., "together_us": .., "slowdown": 1.2}
                                                          (optional; CPU hosts, see below)
                 "curves": {<op class>: {"e_max": .., "t0_us": .., "fit_rms": ..,
                                         "points": [[size, efficiency], ...],
                                         "samples": [{"op", "shape", "size", "time_us", "eff"}]}}},
     "comm": {"link": <link id>, "backend": "gloo", "nproc": 2, "dtype": "fp32",
              "unsupported": {kind: why},
              "curves": [{"kind", "nranks", "sizes": [bytes], "times_us": [monotone],
                          "raw_times_us": [...], "fit": {"latency_us", "bw_gbps", ...}}]}
             or {"skipped": "why", ...},
     "calibration": {...Calibration.to_json()...}        (optional)
     "blocks": {"tables": [<block table>, ...]}           (optional; `cli.py profile --model`)}

A block table is one model's denoiser blocks, text encoders and VAE decode measured on the
profile's device and dtype at one scale and shape (profiler/model.py measures them,
planner/cost/measured.py uses them):

    {"model": "sd3-medium", "scale": "tiny"|"small"|"full", "config_hash": "sha256:...",
     "gpu_id": <= device.gpu_id>, "dtype": <= device.dtype>,
     "shape": {"height", "width", "frames", "batch", "branches", "text_tokens", "tokens"},
     "provenance": {...free-form: configs, weights, device name, torch, diffusers, date, command...},
     "blocks": [{"name": "block0", "signature": "<16 hex>", "count": 3, "modules": [...],
                 "points": [{"seq_div": 8, "tokens": 32, "batch": 2, "time_us": 410.0}, ...]}],
     "components": [{"name": "text_encoder", "label": "CLIP-L text", "signature": "<16 hex>",
                     "batch": 1, "time_us": 950.0}, ...]}

One entry per distinct block class (the model's blocks repeat; "count" of them share it),
keyed by its signature (planner/cost/measured.block_signature: the block's ops without the
resolution), so that a table measured at --scale small never applies to the full model.
Each point is the block run on 1/seq_div of the split units (image rows, video frames)
with attention over its own tokens: `tokens` split-stream tokens of the model on the
rank, `batch` samples (images x CFG branches), median seconds in time_us; points in
increasing rows (batch x tokens). "shape.tokens" is the model's split-stream tokens at
the measured size. (model, scale) is unique among the tables; `profile --model` replaces
that pair's table and keeps the others.

compute.concurrency is how much slower the same kernels run when all nproc local ranks
compute at once than when one runs alone (shared cores, SMT siblings, memory bandwidth):
Profile.concurrent_slowdown, applied to the compute of every multi-rank plan.

Efficiencies are relative to device.peak_flops (memory_bw for "mem"), the GpuSpec peaks
when it was measured; if hw_profiles/gpus changes later they are rescaled on load so
that the cost model still reproduces the measured times.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import read_json
from .hardware import (COLLECTIVE_KINDS, HW_DIR, OP_CLASSES, Calibration, CommCurve, EfficiencyCurve,
                       HardwareError, Profile, default_profile, gpu_ids, link_ids, load_gpu)

FORMAT = "paradiff-hw-profile"
VERSION = 1
LOCAL_PROFILE = HW_DIR / "local.json"
DTYPES = ("fp32", "tf32", "bf16", "fp16", "fp8")
SCALES = ("tiny", "small", "full")       # executor/diffusers/scale.py


@dataclass(frozen=True, slots=True)
class BlockPoint:
    """One measurement of a block: `tokens` split-stream tokens of the model on the rank
    (the whole model's / seq_div), `batch` samples, median seconds."""

    tokens: float
    batch: int
    seconds: float

    @property
    def rows(self) -> float:
        return self.batch * self.tokens


@dataclass(frozen=True, slots=True)
class MeasuredBlock:
    """A distinct denoiser block class: its first block's name, its signature, how many of
    the model's blocks share it, and its points in increasing rows."""

    name: str
    signature: str
    count: int
    points: tuple[BlockPoint, ...]


@dataclass(frozen=True, slots=True)
class MeasuredComponent:
    """A text encoder or the VAE decode at the measured shape: seconds for `batch` prompts
    or images."""

    name: str
    signature: str
    batch: int
    seconds: float


@dataclass(frozen=True, slots=True)
class BlockTable:
    """One model's measured blocks at one scale on one device and dtype (module doc)."""

    model: str
    scale: str
    config_hash: str
    gpu_id: str
    dtype: str
    tokens: int                                  # split-stream tokens at the measured shape
    blocks: tuple[MeasuredBlock, ...]
    components: tuple[MeasuredComponent, ...] = ()
    profile: str = ""                            # the profile's name (what a prediction cites)


class _Bad(Exception):
    """A schema problem, without the file name (added once, by the caller)."""


def _num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _obj(d: Any, where: str) -> dict:
    if not isinstance(d, dict):
        raise _Bad(f"{where} must be a JSON object, got {type(d).__name__}")
    return d


def _need(d: dict, key: str, where: str) -> Any:
    if key not in d:
        raise _Bad(f"{where} lacks '{key}'")
    return d[key]


def _pos(x: Any, where: str, zero_ok: bool = False) -> float:
    if not _num(x) or x < 0 or (x == 0 and not zero_ok):
        raise _Bad(f"{where} must be a {'non-negative' if zero_ok else 'positive'} number, got {x!r}")
    return float(x)


def _within(x: Any, where: str, lo: float, hi: float, lo_open: bool = True, why: str = "") -> float:
    """A finite number in (lo, hi] (or [lo, hi]); `why` says what the range means."""
    if not _num(x) or x > hi or x < lo or (lo_open and x == lo):
        rng = f"{'(' if lo_open else '['}{lo:g}, {hi:g}]"
        raise _Bad(f"{where} must be a number in {rng}, got {x!r}{why}")
    return float(x)


_EFF = "; efficiencies are fractions of device.peak_flops (memory_bw for mem): a profile from an older " \
       "profiler may need `cli.py profile` again"


def _increasing(xs: Any, where: str) -> list[float]:
    if not isinstance(xs, list) or not xs:
        raise _Bad(f"{where} must be a non-empty list of numbers")
    out = [_pos(x, f"{where}[{i}]") for i, x in enumerate(xs)]
    for i in range(1, len(out)):
        if out[i] <= out[i - 1]:
            raise _Bad(f"{where} must be strictly increasing ({out[i - 1]:g} then {out[i]:g} at index {i})")
    return out


def _check_curve(cls: str, cv: Any) -> tuple[float, float, list[tuple[float, float]]]:
    where = f"compute.curves.{cls}"
    cv = _obj(cv, where)
    e_max = _within(_need(cv, "e_max", where), f"{where}.e_max", 0, 1, why=_EFF)
    t0_us = _within(_need(cv, "t0_us", where), f"{where}.t0_us", 0, 1e6, lo_open=False, why=" (microseconds)")
    pts = _need(cv, "points", where)
    if not isinstance(pts, list) or not pts:
        raise _Bad(f"{where}.points must be a non-empty list of [size, efficiency] pairs")
    for i, p in enumerate(pts):
        if not isinstance(p, list) or len(p) != 2:
            raise _Bad(f"{where}.points[{i}] must be a [size, efficiency] pair, got {p!r}")
        _within(p[1], f"{where}.points[{i}] efficiency", 0, 1, why=_EFF)
    sizes = _increasing([p[0] for p in pts], f"{where}.points sizes")
    return e_max, t0_us, [(s, float(p[1])) for s, p in zip(sizes, pts)]


def _check_comm(comm: Any) -> tuple[str | None, list[tuple[str, int, list[float], list[float]]]]:
    comm = _obj(comm, "comm")
    if "skipped" in comm:
        if not isinstance(comm["skipped"], str) or not comm["skipped"]:
            raise _Bad("comm.skipped must be a non-empty string (the reason)")
        return None, []
    link = _need(comm, "link", "comm")
    if not isinstance(link, str) or link not in link_ids():
        raise _Bad(f"comm.link: unknown link {link!r}; known: {', '.join(link_ids())}")
    curves = _need(comm, "curves", "comm")
    if not isinstance(curves, list):
        raise _Bad("comm.curves must be a list of measured collectives")
    out, seen = [], set()
    for i, c in enumerate(curves):
        where = f"comm.curves[{i}]"
        c = _obj(c, where)
        kind = _need(c, "kind", where)
        if kind not in COLLECTIVE_KINDS:
            raise _Bad(f"{where}.kind: unknown collective {kind!r}; known: {', '.join(COLLECTIVE_KINDS)}")
        n = _need(c, "nranks", where)
        if isinstance(n, bool) or not isinstance(n, int) or not 2 <= n <= 1024:
            raise _Bad(f"{where}.nranks must be an integer from 2 to 1024, got {n!r}")
        if (kind, n) in seen:
            raise _Bad(f"{where}: {kind} on {n} ranks is given twice")
        seen.add((kind, n))
        sizes = _increasing(_need(c, "sizes", where), f"{where}.sizes")
        times = _need(c, "times_us", where)
        if not isinstance(times, list) or len(times) != len(sizes):
            raise _Bad(f"{where}.times_us must be a list as long as sizes ({len(sizes)})")
        out.append((kind, n, sizes, [_within(t, f"{where}.times_us[{j}]", 0, 1e9, why=" (microseconds)") * 1e-6
                                     for j, t in enumerate(times)]))
    return link, out


def _check_calibration(cal: Calibration) -> None:
    """The fitted parameters within what a fit can reach (planner/calibrate.py bounds each
    at a few times its prior): finite, positive, fractions where they are fractions."""
    for (fam, cls), cv in cal.curves:
        _within(cv.e_max, f"calibration.curves.{fam}/{cls}.e_max", 0, 4)
        _within(cv.t0_s * 1e6, f"calibration.curves.{fam}/{cls}.t0_us", 0, 1e6, lo_open=False)
    for name, v, hi in (("launch_eager_us", cal.launch_eager_s, 1e6), ("launch_compiled_us", cal.launch_compiled_s, 1e6),
                        ("step_eager_us", cal.step_eager_s, 1e7), ("step_compiled_us", cal.step_compiled_s, 1e7)):
        _within(v * 1e6, f"calibration.{name}", 0, hi, lo_open=False)
    _within(cal.compiled_mem_factor, "calibration.compiled_mem_factor", 0, 1)
    _within(cal.overlap_eff, "calibration.overlap_eff", 0, 1, lo_open=False)
    for link, v in cal.coll_eff:
        _within(v, f"calibration.coll_eff.{link}", 0, 10)


def _int(x: Any, where: str, lo: int, hi: int) -> int:
    if isinstance(x, bool) or not isinstance(x, int) or not lo <= x <= hi:
        raise _Bad(f"{where} must be an integer from {lo} to {hi}, got {x!r}")
    return x


def _text(x: Any, where: str) -> str:
    if not isinstance(x, str) or not x.strip():
        raise _Bad(f"{where} must be a non-empty string, got {x!r}")
    return x


def _list(x: Any, where: str, what: str) -> list:
    if not isinstance(x, list):
        raise _Bad(f"{where} must be a list of {what}, got {type(x).__name__}")
    return x


def _check_points(pts: Any, where: str) -> tuple[BlockPoint, ...]:
    if not _list(pts, where, "measured points"):
        raise _Bad(f"{where} must be a non-empty list of measured points")
    out = []
    for i, p in enumerate(pts):
        at = f"{where}[{i}]"
        p = _obj(p, at)
        if "seq_div" in p:
            _int(p["seq_div"], f"{at}.seq_div", 1, 1 << 20)
        out.append(BlockPoint(_within(_need(p, "tokens", at), f"{at}.tokens", 0, 1e9, why=" (tokens on the rank)"),
                              _int(_need(p, "batch", at), f"{at}.batch", 1, 1 << 20),
                              _within(_need(p, "time_us", at), f"{at}.time_us", 0, 1e12, why=" (microseconds)") * 1e-6))
    for i in range(1, len(out)):
        if out[i].rows <= out[i - 1].rows:
            raise _Bad(f"{where}: points must be in strictly increasing rows (batch x tokens): "
                       f"{out[i - 1].rows:g} then {out[i].rows:g} at index {i}")
    return tuple(out)


def _check_table(t: Any, where: str, gpu_id: str, dtype: str, name: str) -> BlockTable:
    t = _obj(t, where)
    model = _text(_need(t, "model", where), f"{where}.model")
    scale = _need(t, "scale", where)
    if scale not in SCALES:
        raise _Bad(f"{where}.scale {scale!r}: accepted: {', '.join(SCALES)}")
    for key, want in (("gpu_id", gpu_id), ("dtype", dtype)):
        got = _need(t, key, where)
        if got != want:
            raise _Bad(f"{where}.{key} {got!r}: a profile's blocks are measured on its device ({key} {want!r})")
    if "provenance" in t:
        _obj(t["provenance"], f"{where}.provenance")
    shape = _obj(_need(t, "shape", where), f"{where}.shape")
    tokens = _int(_need(shape, "tokens", f"{where}.shape"), f"{where}.shape.tokens", 1, 1 << 30)
    blocks, seen = [], set()
    for i, b in enumerate(_list(_need(t, "blocks", where), f"{where}.blocks", "measured blocks")):
        at = f"{where}.blocks[{i}]"
        b = _obj(b, at)
        sig = _text(_need(b, "signature", at), f"{at}.signature")
        if sig in seen:
            raise _Bad(f"{at}: signature {sig} is given twice (one entry per block class)")
        seen.add(sig)
        blocks.append(MeasuredBlock(_text(_need(b, "name", at), f"{at}.name"), sig,
                                    _int(b.get("count", 1), f"{at}.count", 1, 1 << 20),
                                    _check_points(_need(b, "points", at), f"{at}.points")))
    comps = []
    for i, c in enumerate(_list(t.get("components", []), f"{where}.components", "measured components")):
        at = f"{where}.components[{i}]"
        c = _obj(c, at)
        comps.append(MeasuredComponent(_text(_need(c, "name", at), f"{at}.name"),
                                       _text(_need(c, "signature", at), f"{at}.signature"),
                                       _int(_need(c, "batch", at), f"{at}.batch", 1, 1 << 20),
                                       _within(_need(c, "time_us", at), f"{at}.time_us", 0, 1e12,
                                               why=" (microseconds)") * 1e-6))
    return BlockTable(model, scale, _text(_need(t, "config_hash", where), f"{where}.config_hash"), gpu_id, dtype,
                      tokens, tuple(blocks), tuple(comps), name)


def _check_blocks(doc: Any, gpu_id: str, dtype: str, name: str) -> tuple[BlockTable, ...]:
    doc = _obj(doc, "blocks")
    tables = _list(_need(doc, "tables", "blocks"), "blocks.tables", "block tables")
    out = [_check_table(t, f"blocks.tables[{i}]", gpu_id, dtype, name) for i, t in enumerate(tables)]
    keys = [(t.model, t.scale) for t in out]
    for i, k in enumerate(keys):
        if k in keys[:i]:
            raise _Bad(f"blocks.tables[{i}]: {k[0]} --scale {k[1]} is given twice (one table per model and scale)")
    return tuple(out)


def check_profile(doc: Any) -> None:
    """Raise HardwareError (one line, no file name) if `doc` is not a valid profile."""
    try:
        _parse(doc)
    except _Bad as e:
        raise HardwareError(str(e)) from None


def _parse(doc: Any) -> Profile:
    doc = _obj(doc, "the top level")
    if doc.get("format") != FORMAT:
        raise _Bad(f"'format' must be {FORMAT!r}, got {doc.get('format')!r} (not a hardware profile?)")
    if doc.get("version") != VERSION:
        raise _Bad(f"'version' {doc.get('version')!r} is not supported (this planner reads version {VERSION})")
    if "provenance" in doc:
        _obj(doc["provenance"], "provenance")
    name = doc.get("name", "profile")
    if not isinstance(name, str):
        raise _Bad(f"'name' must be a string, got {type(name).__name__}")
    dev = _obj(_need(doc, "device", "the top level"), "device")
    gpu_id = _need(dev, "gpu_id", "device")
    if not isinstance(gpu_id, str) or gpu_id not in gpu_ids():
        raise _Bad(f"device.gpu_id: unknown GPU {gpu_id!r}; known: {', '.join(gpu_ids())}")
    dtype = _need(dev, "dtype", "device")
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise _Bad(f"device.dtype {dtype!r}: accepted: {', '.join(DTYPES)}")
    peak_file = _within(_need(dev, "peak_flops", "device"), "device.peak_flops", 0, 1e18, why=" (FLOP/s)")
    bw_file = _within(_need(dev, "memory_bw", "device"), "device.memory_bw", 0, 1e15, why=" (bytes/s)")

    comp = _obj(_need(doc, "compute", "the top level"), "compute")
    launch = comp.get("launch_us")
    launch_s = None if launch is None else _within(launch, "compute.launch_us", 0, 1e6, why=" (microseconds)") * 1e-6
    slowdown = 1.0
    if "concurrency" in comp:
        conc = _obj(comp["concurrency"], "compute.concurrency")
        slowdown = _within(_need(conc, "slowdown", "compute.concurrency"), "compute.concurrency.slowdown", 1, 1000,
                           lo_open=False, why=" (how much slower ranks compute together than alone)")
    curves_doc = _obj(_need(comp, "curves", "compute"), "compute.curves")
    spec = load_gpu(gpu_id)
    if dtype not in dict(spec.peak_flops):
        raise _Bad(f"device.dtype {dtype}: {gpu_id} does not compute in {dtype} "
                   f"(it has {', '.join(d for d, _ in spec.peak_flops)})")
    peak_now = spec.peak(dtype)
    curves = []
    for cls, cv in curves_doc.items():
        if cls not in OP_CLASSES:
            raise _Bad(f"compute.curves: unknown op class {cls!r}; known: {', '.join(OP_CLASSES)}")
        e_max, t0_us, pts = _check_curve(cls, cv)
        # keep the measured times if the GpuSpec's peak has changed since (module doc)
        k = (bw_file / spec.memory_bw) if cls == "mem" else (peak_file / peak_now)
        curves.append(((gpu_id, cls), EfficiencyCurve(e_max * k, t0_us * 1e-6,
                                                      tuple((s, e * k) for s, e in pts))))

    link, comm = _check_comm(_need(doc, "comm", "the top level"))
    measured_comm = tuple(((link, kind, n), CommCurve(kind, n, tuple(s), tuple(t)))
                          for kind, n, s, t in comm)

    if "calibration" in doc:
        try:
            cal = Calibration.from_json(_obj(doc["calibration"], "calibration"))
        except HardwareError as e:
            raise _Bad(f"calibration: {e}") from None
        except (TypeError, ValueError, AttributeError, OverflowError) as e:
            raise _Bad(f"calibration is malformed ({e})") from None
        _check_calibration(cal)
    else:
        cal = default_profile().calibration
    blocks = _check_blocks(doc["blocks"], gpu_id, dtype, name) if "blocks" in doc else ()
    return Profile(calibration=cal, measured_curves=tuple(curves), measured_comm=measured_comm,
                   measured_launch_s=launch_s, concurrent_slowdown=slowdown, name=f"measured:{name}",
                   blocks=blocks)


def profile_from_doc(doc: Any, source: str = "hardware profile") -> Profile:
    """A Profile for the cost model from a parsed profile document."""
    try:
        return _parse(doc)
    except _Bad as e:
        raise HardwareError(f"{source}: {e}") from None


def load_profile_doc(path: str | os.PathLike) -> tuple[dict, Profile]:
    """The checked document and its Profile: for callers that also need what the
    Profile does not carry (device.dtype and gpu_id the curves are for, provenance)."""
    p = Path(path)
    src = f"hardware profile {p}"
    doc = read_json(p, src, HardwareError)
    return doc, profile_from_doc(doc, src)


def check_profile_applies(doc: dict, path, cluster, dtype: str) -> None:
    """Refuse a measured profile that says nothing about this plan: its curves hold for the
    GPU (device.gpu_id) and dtype it was measured in, so a CPU profile applied to L40s, or
    a bf16 plan with an fp32 profile, would silently fall back to the datasheet or mix
    dtypes. HardwareError, one line."""
    dev = doc["device"]
    ids = sorted({g.id for g in cluster.gpus})
    if dev["gpu_id"] not in ids:
        raise HardwareError(f"hardware profile {path} was measured on {dev['gpu_id']}, but the cluster has "
                            f"{', '.join(ids)}: plan for that GPU (--gpu {dev['gpu_id']}) or profile these GPUs")
    if dtype != dev["dtype"]:
        raise HardwareError(f"--dtype {dtype}: hardware profile {path} was measured in {dev['dtype']}; its "
                            f"efficiencies hold for {dev['dtype']} only (leave --dtype out, or profile "
                            f"with --dtype {dtype})")


def load_profile(path: str | os.PathLike) -> Profile:
    """Read and check a profile file; HardwareError naming the file and the problem."""
    return load_profile_doc(path)[1]


def save_profile(doc: dict, path: str | os.PathLike) -> Path:
    """Check `doc` and write it (atomically: a reader never sees half a file)."""
    p = Path(path)
    profile_from_doc(doc, f"hardware profile {p} (not written)")
    try:
        text = json.dumps(doc, indent=1, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise HardwareError(f"hardware profile {p} (not written): {e}") from None
    from .errors import UsageError
    from .outfiles import write_atomic
    try:
        return write_atomic(p, text + "\n")
    except UsageError as e:
        raise HardwareError(f"hardware profile {e}") from None


def local_profile() -> Profile | None:
    """hw_profiles/local.json (what `cli.py profile` writes by default), if it exists."""
    return load_profile(LOCAL_PROFILE) if LOCAL_PROFILE.exists() else None
