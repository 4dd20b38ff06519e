"""Collective communication times on a cluster graph (an alpha-beta model, NCCL-style).

Every group of one parallel dimension runs its collective at the same time, so the flows
of all groups are routed over the cluster graph together (shortest paths by latency,
planner/cluster.py) and their bytes add up on each directed edge (links are full
duplex: the two directions are separate). Then

    time = latency + max over directed edges of bytes(edge) / (edge bw * efficiency)

where efficiency = profile.calibration.link_efficiency(edge link id) (1.0 unfitted), and
latency = steps x the summed link latencies of the slowest hop of any group. The max edge
is the bottleneck; the slowest group finishes last, so this is when the dimension is done.

Algorithms (n ranks in the group; nbytes as in collective_time's docstring):
- all_reduce: ring over the ranks in rank order, 2(n-1) steps; each hop carries
  2(n-1)/n x nbytes (reduce-scatter then all-gather).
- all_gather, reduce_scatter: ring, n-1 steps, each hop carries (n-1)/n x nbytes.
- broadcast: pipelined chain from the group's first rank through the others in rank
  order: each hop carries nbytes; n-1 hop latencies.
- all_to_all: every ordered pair sends nbytes/n at once (each rank keeps 1/n); one step.
- p2p: groups are (src, dst) pairs; nbytes along the route; one step.
Ranks are laid out so that consecutive ranks are close, so a ring in rank order is the
ring NCCL would pick.

Measured beats modelled: if profile.comm_curve(bottleneck link, kind, group size) has a
curve, its time(nbytes) is returned instead.

Speed: the load pattern of (kind, groups) is cached on the cluster: per link id, the
largest (bytes carried per byte of nbytes) / bandwidth over its edges. A call after the
first is a dict lookup and a few multiplications.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Sequence

from ..cluster import Cluster
from ..hardware import COLLECTIVE_KINDS, Profile

KINDS = COLLECTIVE_KINDS      # what collective_time understands

# Pattern: (latency s, ((link id, seconds per byte of nbytes), ...) largest first, max group size)
_Pattern = tuple[float, tuple[tuple[str, float], ...], int]


def _flows(kind: str, group: tuple[int, ...]) -> tuple[list[tuple[int, int, float]], int]:
    """(src, dst, bytes per byte of nbytes) flows of one group, and its latency steps."""
    n = len(group)
    if kind == "p2p":
        if n != 2:
            raise ValueError(f"p2p groups are (src, dst) pairs, got {group}")
        return [(group[0], group[1], 1.0)], 1
    if kind == "all_to_all":
        return [(a, b, 1.0 / n) for a in group for b in group if a != b], 1
    ring = sorted(group)
    if kind == "broadcast":
        k = ring.index(group[0])
        chain = ring[k:] + ring[:k]
        return [(a, b, 1.0) for a, b in zip(chain, chain[1:])], n - 1
    factor, steps = ((2 * (n - 1) / n, 2 * (n - 1)) if kind == "all_reduce"
                     else ((n - 1) / n, n - 1))
    return [(a, ring[(i + 1) % n], factor) for i, a in enumerate(ring)], steps


def _pattern(cluster: Cluster, kind: str, groups: tuple[tuple[int, ...], ...]) -> _Pattern:
    # Identical nodes, each running the same groups within itself (Ulysses, Ring, TP or an
    # intra-node pipeline on 128 nodes): the nodes' flows share no edge and node k's edges
    # mirror node 0's (Cluster.route), so node 0 alone gives the same loads, latency and
    # bottlenecks, 1/nodes of the routing. Checked: node 0's routes must stay in node 0.
    local = _node_zero_groups(cluster, groups)
    if local is not None:
        pat = _routed(cluster, kind, local, stay_in_node=True)
        if pat is not None:
            return pat
    return _routed(cluster, kind, groups)


def _node_zero_groups(cluster: Cluster, groups) -> tuple[tuple[int, ...], ...] | None:
    """Node 0's groups when every group lies in one node and each node that holds groups
    holds node 0's, shifted by its first rank, in the same order; else None."""
    if not cluster.identical_nodes:
        return None
    per = cluster.n // cluster.nodes
    by_node: dict[int, list[tuple[int, ...]]] = {}
    for g in groups:
        node = g[0] // per
        base = node * per
        if any(r // per != node for r in g):
            return None
        by_node.setdefault(node, []).append(tuple(r - base for r in g))
    zero = by_node.get(0)
    if zero is None or len(by_node) < 2 or any(v != zero for v in by_node.values()):
        return None
    return tuple(zero)


def _routed(cluster: Cluster, kind: str, groups, stay_in_node: bool = False) -> _Pattern | None:
    loads: dict[tuple[str, str], float] = defaultdict(float)
    latency, nmax = 0.0, 0
    for group in groups:
        if len(set(group)) != len(group):
            raise ValueError(f"group {group} repeats a rank")
        if len(group) < 2:
            continue
        nmax = max(nmax, len(group))
        flows, steps = _flows(kind, group)
        hop = 0.0
        for a, b, coef in flows:
            edges, lat = cluster.route(a, b)
            hop = max(hop, lat)
            for e in edges:
                loads[e] += coef
        latency = max(latency, steps * hop)
    if stay_in_node and any(cluster.graph.nodes[v].get("node") != 0 for e in loads for v in e):
        return None
    per_link: dict[str, float] = {}
    for e, coef in loads.items():
        d = cluster.graph.edges[e]
        per_link[d["link"]] = max(per_link.get(d["link"], 0.0), coef / d["bw"])
    ranked = tuple(sorted(per_link.items(), key=lambda kv: -kv[1]))
    return latency, ranked, nmax


def _get_pattern(cluster: Cluster, kind: str, groups: Sequence[Sequence[int]]) -> _Pattern:
    # first by the groups object's identity (a Layout's groups keep theirs: hashing
    # a thousand ranks' groups on every call cost more than the rest of a prediction),
    # then by value
    seen = cluster._cache.setdefault("comm_by_id", {})
    hit = seen.get((kind, id(groups)))
    if hit is not None and hit[0] is groups:
        return hit[1]
    key = (kind, tuple(map(tuple, groups)))
    cache = cluster._cache.setdefault("comm", {})
    pat = cache.get(key)
    if pat is None:
        if kind not in KINDS:
            raise ValueError(f"unknown collective kind {kind!r}; known: {', '.join(KINDS)}")
        pat = cache[key] = _pattern(cluster, kind, key[1])
    if isinstance(groups, tuple):
        seen[(kind, id(groups))] = (groups, pat)
    return pat


def _bottleneck(per_link: tuple[tuple[str, float], ...], profile: Profile | None,
                kind: str = "") -> tuple[str, float]:
    """(link id, seconds per byte) of the limiting link, after calibrated efficiencies.
    All-to-all may have its own efficiency per link ("<link>/all_to_all"): NCCL runs it as
    many concurrent point-to-point flows, which links that stage through host memory
    (cross-socket PCIe) serve far worse than the pipelined rings of the other collectives."""
    if profile is None or not profile.calibration.coll_eff:
        return per_link[0]
    cal = profile.calibration
    return max(((link, x / max(cal.link_efficiency(link, kind), 1e-9)) for link, x in per_link),
               key=lambda kv: kv[1])


def collective_time(cluster: Cluster, kind: str, groups: Sequence[Sequence[int]],
                    nbytes: float, profile: Profile) -> float:
    """Seconds until every group in `groups` has finished collective `kind`.

    nbytes: all_reduce/broadcast: the buffer on each rank; all_gather: the gathered
    (output) size on each rank; reduce_scatter: the input size on each rank; all_to_all:
    the bytes each rank holds before the exchange; p2p: the message. Groups of one rank
    (and nbytes <= 0) cost nothing.
    """
    latency, per_link, n = _get_pattern(cluster, kind, groups)
    if not per_link or nbytes <= 0:
        return 0.0
    link, sec_per_byte = _bottleneck(per_link, profile, kind)
    if profile.measured_comm:
        curve = profile.comm_curve(link, kind, n)
        if curve is not None:
            return curve.time(nbytes)
    return latency + nbytes * sec_per_byte


def bottleneck_link(cluster: Cluster, groups: Sequence[Sequence[int]], kind: str = "all_reduce",
                    profile: Profile | None = None) -> str:
    """Link id limiting `kind` over these concurrent groups ("none" if nothing moves)."""
    _, per_link, _ = _get_pattern(cluster, kind, groups)
    return _bottleneck(per_link, profile, kind)[0] if per_link else "none"
