"""The plan: what runs on which GPUs, and the grammar of its string.

Grammar (../shared/data/README.md, "Plan strings"), extended with step segments:

    plan      := "serial" | item (" " item)*  [ " | " segment (" | " segment)* ]
    item      := key "=" int
    segment   := first "-" last ":" " " item (" " item)*     (1-based, inclusive step range)

Degree keys (one per strategy) multiply to the GPU count (asyncdiff=N stride=S counts
N+S-1). Modifiers tune the strategy that owns them: patches (PipeFusion micro-batches M),
warmup (synchronous warm-up steps), stride (AsyncDiff S), k (Hybridiff pipeline window).
A missing key means 1 or the default.

A segment runs another plan, on the same GPUs, for a range of denoising steps, e.g.
`cfg=2 | 15-20: hybridiff=2 k=5` runs CFG parallel everywhere except steps 15..20, which
use Hybridiff's two-stage pipeline (planner/ilp/schedule.py chooses such switching
schedules; see docs/plan-strings.md).

The vocabulary (which keys exist, their order, which modifiers a key owns and how many
GPUs a degree spans) is declared by the strategies themselves (planner/strategies); this
module only reads it. A Plan is built through make_plan/parse_plan, so it is canonical.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from .errors import UserError
from .strategies import DEGREE_KEYS, MODIFIERS, STRATEGIES


class PlanError(UserError):
    """A plan string that cannot be parsed or is illegal; the message says what is accepted."""


@dataclass(frozen=True, slots=True)
class Segment:
    """Steps first..last (1-based, inclusive) run `plan` instead of the base plan."""

    first: int
    last: int
    plan: "Plan"

    @property
    def steps(self) -> int:
        return self.last - self.first + 1

    def __str__(self) -> str:
        return f"{self.first}-{self.last}: {self.plan}"


@dataclass(frozen=True, slots=True)
class Plan:
    degrees: tuple[tuple[str, int], ...] = ()     # keys with value > 1, in the strategies' order
    modifiers: tuple[tuple[str, int], ...] = ()   # in the strategies' modifier order
    segments: tuple[Segment, ...] = ()
    spans: tuple[int, ...] = ()                   # GPUs along each degree key (asyncdiff: N+S-1)
    _lookup: dict = field(default=None, compare=False, repr=False, hash=False)

    def __post_init__(self):
        object.__setattr__(self, "_lookup", dict(self.degrees) | dict(self.modifiers))

    # ---- queries
    def degree(self, key: str) -> int:
        return dict(self.degrees).get(key, 1)

    def has(self, key: str) -> bool:
        return key in self._lookup

    def get(self, key: str, default=None):
        return self._lookup.get(key, default)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(k for k, _ in self.degrees)

    @property
    def dimensions(self) -> tuple[tuple[str, int], ...]:
        """(key, GPUs along it) of every parallel dimension, in plan order."""
        return tuple((k, s) for (k, _), s in zip(self.degrees, self.spans))

    @property
    def gpus(self) -> int:
        return math.prod(self.spans)

    @property
    def is_serial(self) -> bool:
        return not self.degrees and not self.segments

    def base(self) -> "Plan":
        """The plan without its step segments."""
        return Plan(self.degrees, self.modifiers, (), self.spans) if self.segments else self

    def plans(self) -> tuple["Plan", ...]:
        """The base plan, then each segment's plan."""
        return (self.base(),) + tuple(s.plan for s in self.segments)

    def plan_at(self, step: int) -> "Plan":
        """The plan that runs denoising step `step` (1-based)."""
        for seg in self.segments:
            if seg.first <= step <= seg.last:
                return seg.plan
        return self.base()

    def items(self) -> dict[str, int]:
        """Degree and modifier keys -> values (what make_plan takes)."""
        return dict(self.degrees) | dict(self.modifiers)

    def replace(self, **changes: int | None) -> "Plan":
        """A copy with keys set (value > 1 or a modifier) or removed (None)."""
        d = self.items()
        for k, v in changes.items():
            if v is None:
                d.pop(k, None)
            else:
                d[k] = v
        return make_plan(d, self.segments)

    def __str__(self) -> str:
        items = [f"{k}={v}" for k, v in self.degrees + self.modifiers]
        head = " ".join(items) if items else "serial"
        return " | ".join([head] + [str(s) for s in self.segments])

    def to_dict(self) -> dict:
        return {"plan": str(self), "degrees": dict(self.degrees), "modifiers": dict(self.modifiers),
                "schedule": [{"first": s.first, "last": s.last, "plan": str(s.plan)} for s in self.segments],
                "gpus": self.gpus}


SERIAL = Plan()


def make_plan(items: dict[str, int], segments: tuple[Segment, ...] = ()) -> Plan:
    """Canonical Plan from a key -> value mapping (degree-1 entries are dropped)."""
    for k in items:
        if k not in STRATEGIES and k not in MODIFIERS or k == "serial":
            raise PlanError(f"unknown plan key '{k}'; known: {', '.join(DEGREE_KEYS + tuple(MODIFIERS))}")
    for k, v in items.items():
        low = MODIFIERS[k].minimum if k in MODIFIERS else 1
        if int(v) < low:
            raise PlanError(f"plan value '{k}={v}' must be >= {low}")
    degrees = tuple((k, int(items[k])) for k in DEGREE_KEYS if k in items and int(items[k]) > 1)
    present = {k for k, _ in degrees}
    for k, m in MODIFIERS.items():
        if k in items and not present & set(m.owners):
            raise PlanError(f"plan key '{k}' needs one of {', '.join(m.owners)} with degree > 1")
    modifiers = tuple((k, int(items[k])) for k in MODIFIERS if k in items)
    plan = Plan(degrees, modifiers, tuple(segments))
    spans = tuple(STRATEGIES[k].gpus(d, plan) for k, d in degrees)
    return Plan(degrees, modifiers, tuple(segments), spans)


def parse_plan(text: str) -> Plan:
    """Parse a plan string; raises PlanError with one line naming the problem."""
    head, raw_segments = split_segments(text)
    base = _one(head, "")
    segs = [(Segment(a, b, _one(body, f" in segment '{raw}'")), raw) for a, b, body, raw in raw_segments]
    return Plan(base.degrees, base.modifiers, check_segments(base, segs), base.spans)


def _one(text: str, where: str) -> Plan:
    items = parse_items(text, where)
    if items is None:
        return SERIAL
    try:
        return make_plan(items)
    except PlanError as e:
        raise PlanError(f"{e}{where}") from None


# ---------------------------------------------------------------- grammar
_INT = re.compile(r"[0-9]{1,9}")   # ASCII digits only (int() also takes "٣", "1_0", "+4"); 9 are plenty


def parse_items(text: str, where: str = "") -> dict[str, int] | None:
    """key=value items of one plan (no segments) -> {key: value}; None for 'serial'."""
    text = text.strip()
    if not text:
        raise PlanError(f"empty plan{where}; write 'serial' for one GPU")
    if text == "serial":
        return None
    items: dict[str, int] = {}
    for tok in text.split():
        key, eq, value = tok.partition("=")
        if not eq:
            raise PlanError(f"plan item '{tok}'{where} is not key=value (e.g. 'cfg=2 pipefusion=4')")
        if key in items:
            raise PlanError(f"plan key '{key}' given twice{where}")
        if not _INT.fullmatch(value):
            raise PlanError(f"plan value '{tok}'{where} is not an integer (up to 9 ASCII digits 0-9)")
        items[key] = int(value)
    return items


def split_segments(text: str) -> tuple[str, list[tuple[int, int, str, str]]]:
    """The base plan's text and (first, last, body, raw) of each segment, in order; checks
    the step ranges (overlaps are checked once the segments are built)."""
    parts = text.split("|")
    segs = []
    for raw in parts[1:]:
        rng, colon, body = raw.partition(":")
        first, dash, last = rng.strip().partition("-")
        if not colon or not dash or not _INT.fullmatch(first.strip()) or not _INT.fullmatch(last.strip()):
            raise PlanError(f"schedule segment '{raw.strip()}' must look like 'FIRST-LAST: key=value ...' "
                            f"(e.g. 'cfg=2 | 15-20: hybridiff=2 k=5')")
        a, b = int(first), int(last)
        if not 1 <= a <= b:
            raise PlanError(f"schedule segment '{raw.strip()}': need 1 <= first <= last")
        segs.append((a, b, body, raw.strip()))
    segs.sort(key=lambda s: s[0])
    return parts[0], segs


def check_segments(base: Plan, segs: list[tuple[Segment, str]]) -> tuple[Segment, ...]:
    """Segments must use the base plan's GPUs and must not overlap."""
    for seg, raw in segs:
        if seg.plan.gpus != base.gpus:
            raise PlanError(f"schedule segment '{raw}' uses {seg.plan.gpus} GPUs but the base plan "
                            f"'{base}' uses {base.gpus}; both must use the same GPUs")
    out = tuple(s for s, _ in segs)
    for s0, s1 in zip(out, out[1:]):
        if s1.first <= s0.last:
            raise PlanError(f"schedule segments '{s0}' and '{s1}' overlap")
    return out


# ---------------------------------------------------------------- enumeration
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
