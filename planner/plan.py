"""The plan string: what runs on which GPUs.

Grammar (../shared/data/README.md, "Plan strings"), extended with a step schedule:

    plan      := "serial" | item (" " item)*  [ " | " segment (" | " segment)* ]
    item      := key "=" int
    segment   := first "-" last ":" " " item (" " item)*     (1-based, inclusive step range)

Degree keys multiply to the GPU count (asyncdiff=N stride=S counts N+S-1). Modifiers:
patches (PipeFusion micro-batches M), warmup (synchronous warm-up steps), stride
(AsyncDiff S), k (Hybridiff pipeline window). A missing key means 1 or the default.

A segment runs another plan, on the same GPUs, for a range of denoising steps, e.g.
`cfg=2 | 15-20: hybridiff=2 k=5` runs CFG parallel everywhere except steps 15..20, which
use Hybridiff's two-stage pipeline. The base plan and every segment must use the same
GPU count (planner/ilp/schedule.py chooses such schedules; see docs/plan-strings.md).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

# Printed in this order, which is also the order of the published plan strings.
DEGREE_KEYS = ("cfg", "dp", "pipefusion", "ulysses", "ring", "tp", "distrifusion",
               "sync_patch", "naive_patch", "asyncdiff", "paradigms", "parastep",
               "hybridiff", "dsp")
MODIFIER_KEYS = ("patches", "warmup", "stride", "k")
# Which degree keys a modifier belongs to: a modifier without one of them is a mistake.
MODIFIER_OWNERS = {
    "patches": ("pipefusion",),
    "warmup": ("pipefusion", "distrifusion", "asyncdiff", "parastep", "hybridiff"),
    "stride": ("asyncdiff",),
    "k": ("hybridiff",),
}


_ASCII_INT = re.compile(r"[0-9]{1,9}")       # no plan degree or step needs more digits


class PlanError(ValueError):
    """A plan string that cannot be parsed or is illegal; the message says what is accepted."""


@dataclass(frozen=True, slots=True)
class Segment:
    """Steps first..last (1-based, inclusive) run `plan` instead of the base plan."""

    first: int
    last: int
    plan: "Plan"

    def __str__(self) -> str:
        return f"{self.first}-{self.last}: {self.plan}"


@dataclass(frozen=True, slots=True)
class Plan:
    degrees: tuple[tuple[str, int], ...] = ()     # only keys with value > 1, in DEGREE_KEYS order
    modifiers: tuple[tuple[str, int], ...] = ()   # in MODIFIER_KEYS order
    schedule: tuple[Segment, ...] = ()
    _lookup: dict = field(default=None, compare=False, repr=False, hash=False)

    def __post_init__(self):
        object.__setattr__(self, "_lookup", dict(self.degrees) | dict(self.modifiers))

    # ---- queries
    def degree(self, key: str) -> int:
        return self._lookup.get(key, 1) if key in DEGREE_KEYS else 1

    def has(self, key: str) -> bool:
        return key in self._lookup

    def get(self, key: str, default=None):
        return self._lookup.get(key, default)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(k for k, _ in self.degrees)

    @property
    def gpus(self) -> int:
        n = 1
        for k, v in self.degrees:
            n *= v + self.get("stride", 1) - 1 if k == "asyncdiff" else v
        return n

    @property
    def is_serial(self) -> bool:
        return not self.degrees and not self.schedule

    def base(self) -> "Plan":
        """The plan without its schedule segments."""
        return Plan(self.degrees, self.modifiers) if self.schedule else self

    def plans(self) -> tuple["Plan", ...]:
        """The base plan, then each schedule segment's plan."""
        return (self.base(),) + tuple(s.plan for s in self.schedule)

    def plan_at(self, step: int) -> "Plan":
        """The plan that runs denoising step `step` (1-based)."""
        for seg in self.schedule:
            if seg.first <= step <= seg.last:
                return seg.plan
        return self.base()

    def replace(self, **changes: int | None) -> "Plan":
        """A copy with keys set (value > 1 or a modifier) or removed (None)."""
        d = dict(self.degrees) | dict(self.modifiers)
        for k, v in changes.items():
            if v is None:
                d.pop(k, None)
            else:
                d[k] = v
        return make_plan(d, self.schedule)

    def __str__(self) -> str:
        items = [f"{k}={v}" for k, v in self.degrees + self.modifiers]
        head = " ".join(items) if items else "serial"
        return " | ".join([head] + [str(s) for s in self.schedule])

    def to_dict(self) -> dict:
        return {"plan": str(self), "degrees": dict(self.degrees), "modifiers": dict(self.modifiers),
                "schedule": [{"first": s.first, "last": s.last, "plan": str(s.plan)} for s in self.schedule],
                "gpus": self.gpus}


def make_plan(items: dict[str, int], schedule: tuple[Segment, ...] = ()) -> Plan:
    """Canonical Plan from a key -> value mapping (degree 1 entries are dropped)."""
    for k in items:
        if k not in DEGREE_KEYS and k not in MODIFIER_KEYS:
            raise PlanError(f"unknown plan key '{k}'; known: {', '.join(DEGREE_KEYS + MODIFIER_KEYS)}")
    degrees = tuple((k, int(items[k])) for k in DEGREE_KEYS if k in items and int(items[k]) > 1)
    present = {k for k, _ in degrees}
    for k in MODIFIER_KEYS:
        if k in items and not present & set(MODIFIER_OWNERS[k]):
            raise PlanError(f"plan key '{k}' needs one of {', '.join(MODIFIER_OWNERS[k])} "
                            f"with degree > 1")
    modifiers = tuple((k, int(items[k])) for k in MODIFIER_KEYS if k in items)
    return Plan(degrees, modifiers, tuple(schedule))


def _parse_items(text: str, where: str) -> Plan:
    text = text.strip()
    if text in ("serial", ""):
        if not text:
            raise PlanError(f"empty plan{where}; write 'serial' for one GPU")
        return Plan()
    items: dict[str, int] = {}
    for tok in text.split():
        key, eq, value = tok.partition("=")
        if not eq:
            raise PlanError(f"plan item '{tok}'{where} is not key=value (e.g. 'cfg=2 pipefusion=4')")
        if key in items:
            raise PlanError(f"plan key '{key}' given twice{where}")
        if not _ASCII_INT.fullmatch(value):       # int() also takes "٣", "1_0" and "+4"
            raise PlanError(f"plan value '{tok}'{where} is not an integer (up to 9 ASCII digits 0-9)")
        v = int(value)
        if v < (0 if key == "warmup" else 1):
            raise PlanError(f"plan value '{tok}'{where} must be >= {0 if key == 'warmup' else 1}")
        items[key] = v
    return make_plan(items)


def parse_plan(text: str) -> Plan:
    """Parse a plan string; raises PlanError with one line naming the problem."""
    parts = text.split("|")
    base = _parse_items(parts[0], "")
    segs = []
    for raw in parts[1:]:
        rng, colon, body = raw.partition(":")
        first, dash, last = rng.strip().partition("-")
        if not colon or not dash or not _ASCII_INT.fullmatch(first.strip()) or not _ASCII_INT.fullmatch(last.strip()):
            raise PlanError(f"schedule segment '{raw.strip()}' must look like 'FIRST-LAST: key=value ...' "
                            f"(e.g. 'cfg=2 | 15-20: hybridiff=2 k=5')")
        a, b = int(first), int(last)
        if not 1 <= a <= b:
            raise PlanError(f"schedule segment '{raw.strip()}': need 1 <= first <= last")
        sub = _parse_items(body, f" in segment '{raw.strip()}'")
        if sub.gpus != base.gpus:
            raise PlanError(f"schedule segment '{raw.strip()}' uses {sub.gpus} GPUs but the base plan "
                            f"'{base}' uses {base.gpus}; both must use the same GPUs")
        segs.append(Segment(a, b, sub))
    segs.sort(key=lambda s: s.first)
    for s0, s1 in zip(segs, segs[1:]):
        if s1.first <= s0.last:
            raise PlanError(f"schedule segments '{s0}' and '{s1}' overlap")
    return Plan(base.degrees, base.modifiers, tuple(segs))


def factorisations(n: int, keys: tuple[str, ...], caps: dict[str, int] | None = None):
    """Every assignment of degrees >= 1 to `keys` whose product is n (degree <= caps[key])."""
    caps = caps or {}

    def rec(i: int, rest: int):
        if i == len(keys):
            if rest == 1:
                yield {}
            return
        k = keys[i]
        for d in divisors(rest):
            if d > caps.get(k, rest):
                break
            for tail in rec(i + 1, rest // d):
                yield {k: d, **tail} if d > 1 else tail
    yield from rec(0, n)


def divisors(n: int) -> list[int]:
    small = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
    return sorted(set(small + [n // d for d in small]))
