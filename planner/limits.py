"""What every number a user gives may be, and the checks that say so in one line.

Options (argparse types built here) and file fields (CSV rows, cluster files, hardware
profiles) go through the same checks, once, at the edge: inside, Scenario, Cluster and
Plan hold valid values. A refused value gets one line that names it and the accepted range,
e.g. "--steps 1000000: must be an integer from 1 to 1000".

Numbers are read strictly: integers are ASCII digits with an optional sign ("1e3", "1.0",
"1_000" and non-ASCII digits such as "١٢" are refused, although Python's int() takes some
of them); reals are finite ASCII decimals (NaN and infinities are refused).

The bounds, and why (README, "Reliability"):
- height, width 8..16384 px: the smallest latent is one 8x8 VAE tile; no model here is
  run beyond 16K per side (and the executor's tensors would not fit in any host's memory).
- frames 1..1024: video models generate up to 129 frames (HunyuanVideo); 1024 leaves room.
- steps 1..1000: samplers discretise the 1,000 training timesteps of DDPM-style schedules;
  more steps than that repeat timesteps (and the planner's memory grows with the steps).
- batch 1..1024, text tokens 0..4096 (T5-XXL prompts are 512 tokens at most).
- gpus, nodes 1..1024: the search is designed and timed up to 1,024 GPUs (about 4 s);
  beyond that its enumeration and the cluster graph grow without a use.
- run: repeats 1..100, warm-up runs 0..100, guidance 0..100, Picard tolerance 0..1,
  seed 0..2^63-1 (torch.Generator seeds are 64-bit and the executor adds offsets),
  timeout 0.1 s..1 day.
- ranks on a CPU host (run --nproc, profile --nproc): at most max(8, 4 x cores), so that an
  8-GPU plan can still be rehearsed on a small machine; above the core count the ranks
  time-share cores (a warning says so and the prediction accounts for it).
"""
from __future__ import annotations

import argparse
import math
import os
import re
from dataclasses import dataclass

from .errors import UsageError


@dataclass(frozen=True, slots=True)
class Bound:
    lo: float
    hi: float
    integer: bool = True

    def describe(self) -> str:
        kind = "an integer" if self.integer else "a number"
        return f"must be {kind} from {_fmt(self.lo)} to {_fmt(self.hi)}"


BOUNDS: dict[str, Bound] = {
    "height": Bound(8, 16384), "width": Bound(8, 16384), "frames": Bound(1, 1024),
    "steps": Bound(1, 1000), "batch": Bound(1, 1024), "text_tokens": Bound(0, 4096),
    "gpus": Bound(1, 1024), "nodes": Bound(1, 1024),
    "top": Bound(1, 100_000), "approx_steps": Bound(0, 1000),
    "repeats": Bound(1, 100), "warmup_runs": Bound(0, 100),
    "seed": Bound(0, 2**63 - 1),
    "guidance": Bound(0, 100, integer=False), "tolerance": Bound(0, 1, integer=False),
    "timeout": Bound(0.1, 86_400, integer=False),
}
RANKS_PER_CORE = 4
MIN_RANK_LIMIT = 8
_INT = re.compile(r"[+-]?[0-9]+")
_REAL = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def cores() -> int:
    """CPU cores this process may use (the affinity mask, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def available_memory() -> float | None:
    """Bytes of host memory available now (MemAvailable of /proc/meminfo), None where
    unknown (not Linux): the run and profile commands check their tensors against it."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024.0
    except OSError:
        pass
    return None


def cpu_rank_limit() -> int:
    return max(MIN_RANK_LIMIT, RANKS_PER_CORE * cores())


def show(value) -> str:
    """A value as a one-line message shows it: as typed, or quoted and escaped when it is
    empty, has blanks around it or characters that would break the line."""
    text = value if isinstance(value, str) else repr(value)
    return repr(text) if (not text or not text.isprintable() or text != text.strip()) else text


def parse_int(text, name: str, bound: Bound | None = None, error: type[Exception] = UsageError) -> int:
    """An integer from text (or an int), within `bound`; `error` with one line otherwise."""
    b = bound or BOUNDS[name.lstrip("-").replace("-", "_").split()[-1]]
    if isinstance(text, bool) or not isinstance(text, (str, int)) or (
            isinstance(text, str) and not _INT.fullmatch(text.strip())):
        raise error(f"{name} {show(text)}: {b.describe()}")
    v = int(text)
    if not b.lo <= v <= b.hi:
        raise error(f"{name} {show(text)}: {b.describe()}")
    return v


def parse_real(text, name: str, bound: Bound | None = None, error: type[Exception] = UsageError) -> float:
    """A finite number from text (or an int/float), within `bound`."""
    b = bound or BOUNDS[name.lstrip("-").replace("-", "_").split()[-1]]
    ok = (isinstance(text, (int, float)) and not isinstance(text, bool)) or (
        isinstance(text, str) and _REAL.fullmatch(text.strip()))
    v = float(text) if ok else math.nan
    if not math.isfinite(v) or not b.lo <= v <= b.hi:
        raise error(f"{name} {show(text)}: {b.describe()}")
    return v


class _Type:
    """An argparse `type=` that checks a value against its bound; the message carries the
    option's name, and OneLineParser (cli.py) prints it as is."""

    def __init__(self, name: str, bound: Bound):
        self.name, self.bound = name, bound
        self.__name__ = "integer" if bound.integer else "number"    # argparse's fallback wording

    def __call__(self, text: str):
        try:
            return (parse_int if self.bound.integer else parse_real)(text, self.name, self.bound)
        except UsageError as e:
            raise argparse.ArgumentTypeError(str(e)) from None


def option(name: str, lo: float | None = None, hi: float | None = None) -> _Type:
    """The argparse type of option `name` ("--steps"): its BOUNDS entry, or lo..hi."""
    key = name.lstrip("-").replace("-", "_")
    base = BOUNDS.get(key)
    if lo is not None or hi is not None or base is None:
        base = Bound(lo if lo is not None else base.lo, hi if hi is not None else base.hi,
                     base.integer if base else True)
    return _Type(name, base)


def choice(name: str, accepted) -> "_Choice":
    return _Choice(name, tuple(accepted))


class _Choice:
    """An argparse type for one of a few words, refused in one line naming them all."""

    def __init__(self, name: str, accepted: tuple[str, ...]):
        self.name, self.accepted = name, accepted
        self.__name__ = "choice"

    def __call__(self, text: str) -> str:
        if text not in self.accepted:
            raise argparse.ArgumentTypeError(f"{self.name} {show(text)}: accepted: {', '.join(self.accepted)}")
        return text
