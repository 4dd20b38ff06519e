"""What an inference engine can run, as data, and the few rules every engine shares.

An engine (xDiT, diffusers, SGLang diffusion, vLLM-Omni, cache-dit, paradiff's own
executor) is described by:
- `keys`: for every planner strategy key, whether the engine has it and, if so, under
  which flag or config field (KeySupport, with the source it was read from);
- `models`: for each zoo model it runs, the strategy keys it supports on that model
  class (ModelSupport, with its source); a model missing here is one it does not run;
- `order`: its rank-order convention (inner to outer), for placement;
- `constraints()`: its own checks on a plan (combinations it refuses, divisibility);
- `launch()`: how a plan becomes its command line or config.

Every refusal is a Refusal: the rule in one sentence and the source (file@version) it
comes from. Nothing here imports torch.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..plan import Plan
from ..spec import ModelSpec, Scenario
from ..strategies import STRATEGIES


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why an engine cannot run a plan: the rule and where it is written."""

    rule: str
    source: str

    def __str__(self) -> str:
        return f"{self.rule} [{self.source}]"

    def to_dict(self) -> dict:
        return {"rule": self.rule, "source": self.source}


@dataclass(frozen=True, slots=True)
class KeySupport:
    """One planner strategy key in one engine: its flag or config field when supported,
    else why not (`note` is the flag or the reason)."""

    supported: bool
    note: str
    source: str


def decisions(given: dict[str, KeySupport], otherwise: KeySupport) -> dict[str, KeySupport]:
    """An engine's decision for every planner strategy key: the ones `given`, and
    `otherwise` (the engine's own list of methods, which lacks the rest) for all others,
    so a strategy added to the planner is refused by an engine until its file says more."""
    unknown = set(given) - set(STRATEGIES)
    if unknown:
        raise ImportError(f"engine decisions for unknown strategy keys {sorted(unknown)}")
    return {k: given.get(k, otherwise) for k in STRATEGIES}


def has(flag: str, source: str) -> KeySupport:
    return KeySupport(True, flag, source)


def lacks(reason: str, source: str) -> KeySupport:
    return KeySupport(False, reason, source)


@dataclass(frozen=True, slots=True)
class ModelSupport:
    """A zoo model an engine runs: the engine's name for it and the keys it supports on it."""

    name: str                      # what the launch line names (HF repo, runner name, script)
    keys: frozenset[str]           # strategy keys supported on this model (serial is implied)
    source: str
    note: str = ""


@dataclass(frozen=True)
class Launch:
    """How to start the plan on the engine: a shell command, the engine's own config
    values, optionally a Python script the command runs, and notes."""

    command: str
    config: dict
    script: str = ""
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {"command": self.command, "config": self.config, "script": self.script or None,
                "notes": list(self.notes)}


@dataclass
class Engine:
    name: str                              # --engine value
    title: str                             # for sentences ("SGLang diffusion")
    version: str                           # the version or commit its rules were read at
    keys: dict[str, KeySupport]
    models: dict[str, ModelSupport]
    order: tuple[str, ...] | None          # rank order, inner to outer; None: any (placement free)
    order_source: str = ""
    schedules: KeySupport = field(default_factory=lambda: lacks("", ""))
    multi_node: KeySupport = field(default_factory=lambda: has("", ""))
    # Known per-run overheads stated by a source (seconds per denoising step); none is
    # stated by any source read so far, so every engine is predicted like paradiff.
    overheads: tuple[str, ...] = ()

    # ---- what it runs
    def supported_keys(self) -> list[str]:
        return [k for k, s in self.keys.items() if s.supported and k != "serial"]

    def model_support(self, model_id: str) -> ModelSupport | None:
        return self.models.get(model_id)

    def describe_model(self, model_id: str) -> str:
        """One phrase: what the engine supports on this model (for error lines)."""
        ms = self.model_support(model_id)
        if ms is None:
            return f"{self.title} parallelizes {', '.join(self.models) or 'no zoo model'}"
        keys = [k for k in self.keys if k in ms.keys]
        return (f"{self.title} supports {' x '.join(keys) if keys else 'one GPU only'} on {model_id} "
                f"[{ms.source}]")

    # ---- rules
    def refusals(self, plan: Plan, model: ModelSpec, sc: Scenario, nodes: int = 1) -> list[Refusal]:
        """Every reason the engine cannot run `plan` on `model` (empty: it can)."""
        out: list[Refusal] = []
        ms = self.model_support(model.id)
        if ms is None:
            out.append(Refusal(f"{self.title} has no multi-GPU support for {model.id}", self.models_source(model.id)))
        if plan.segments and not self.schedules.supported:
            out.append(Refusal(self.schedules.note, self.schedules.source))
        if nodes > 1 and not self.multi_node.supported and not plan.is_serial:
            out.append(Refusal(self.multi_node.note, self.multi_node.source))
        for p in plan.plans():
            for k in p.keys:
                ks = self.keys[k]
                if not ks.supported:
                    out.append(Refusal(f"{self.title} has no {k}: {ks.note}", ks.source))
                elif ms is not None and k not in ms.keys:
                    out.append(Refusal(f"{self.title} supports {k} on other models, not on {model.id} "
                                       f"({self.describe_model(model.id).split(' [')[0]})", ms.source))
        if not out:
            for p in plan.plans():
                out += self.constraints(p, model, sc)
        return list(dict.fromkeys(out))

    def models_source(self, model_id: str) -> str:
        """Where the engine's list of models is (for 'does not run' refusals)."""
        return next(iter({m.source for m in self.models.values()}), self.version)

    def constraints(self, plan: Plan, model: ModelSpec, sc: Scenario) -> list[Refusal]:
        """Engine-specific checks beyond supported keys (override)."""
        return []

    def can_run(self, plan: Plan, model: ModelSpec, sc: Scenario, nodes: int = 1) -> bool:
        return not self.refusals(plan, model, sc, nodes)

    # ---- launch
    def launch(self, plan: Plan, model: ModelSpec, sc: Scenario, cluster) -> Launch:
        raise NotImplementedError


# ---------------------------------------------------------------- shared rules
def divides_heads(plan: Plan, model: ModelSpec, keys: tuple[str, ...], title: str, source: str) -> list[Refusal]:
    """The product of `keys`' degrees must divide every attention head count (Ulysses'
    all-to-all and tensor parallelism give each rank whole heads)."""
    d = 1
    for k in keys:
        d *= plan.degree(k)
    bad = [h for h in model.attention_heads() if h % d]
    if d > 1 and bad:
        what = " x ".join(f"{k}={plan.degree(k)}" for k in keys if plan.degree(k) > 1)
        return [Refusal(f"{title} needs {what} to divide the head counts {list(model.attention_heads())} "
                        f"of {model.id}", source)]
    return []


def divides_tokens(tokens: int, degree: int, what: str, title: str, source: str) -> list[Refusal]:
    """A sequence split into `degree` equal shards needs tokens % degree == 0."""
    if degree > 1 and tokens % degree:
        return [Refusal(f"{title} splits the {tokens} {what} into {degree} equal shards, "
                        f"and {tokens} % {degree} = {tokens % degree}", source)]
    return []


def at_most_one(plan: Plan, keys: tuple[str, ...], title: str, source: str) -> list[Refusal]:
    used = [k for k in keys if plan.degree(k) > 1]
    if len(used) > 1:
        return [Refusal(f"{title} cannot combine {' and '.join(used)} in one run", source)]
    return []


def text_tokens(model: ModelSpec, sc: Scenario) -> int:
    return sc.text_tokens if sc.text_tokens is not None else model.facts.text_tokens


def sequence_degree(plan: Plan) -> int:
    return plan.degree("ulysses") * plan.degree("ring")


def torchrun(cluster, script_and_args: str) -> str:
    """A torchrun line for the cluster: one node standalone, else one line per node's rank
    (run on every node with its --node-rank)."""
    nodes = cluster.nodes
    if nodes <= 1:
        return f"torchrun --standalone --nproc-per-node {cluster.n} {script_and_args}"
    return (f"torchrun --nnodes {nodes} --nproc-per-node {cluster.n // nodes} --node-rank $NODE_RANK "
            f"--rdzv-backend c10d --rdzv-endpoint $MASTER_ADDR:29500 {script_and_args}")
