"""A cluster as a networkx graph of GPUs, hosts and switches, with the bandwidth and
latency of every link on its edges. The communication model (planner/cost/comm.py)
routes each collective's flows over this graph and finds the edge that limits it.

Vertices: "gpu<r>" for rank r; "host<n>.s<k>" CPU socket k of node n (the PCIe root
complex); "nvswitch<n>"; "nic<n>"; "fabric". Edge attributes: link (a link id of
hw_profiles/links), bw (effective bytes/s per direction), latency (s).

Topology rules, and why:
- Every GPU sits on PCIe under a CPU socket of its node ("host<n>.s<k>"), whatever the
  intra id: that is where the NIC lives (inter-node traffic goes GPU -> host -> NIC), and
  where traffic goes when there is no faster path. The edge is the GPU's PCIe link: the
  intra id's generation for pcie* ids, capped at the GPU's own generation (a Gen4 card in
  a Gen5 slot trains at Gen4), the GPU's own generation otherwise; "shm" for the host CPU
  placeholder (pcie_gen 0).
- nvswitch: each GPU also has one edge to the node's "nvswitch<n>" vertex with its NVLink
  per-direction bandwidth x the link file's efficiency (LinkSpec.bandwidth). A switch
  gives every GPU its full NVLink bandwidth to any peer, so a star is exact for it. GPUs
  without NVLink are refused.
- nvlink-bridge: GPUs are bridged in pairs (0-1, 2-3, ... within the node) by a direct
  NVLink edge; a pair talks to other pairs over PCIe (the data README: "pairs are bridged
  and the rest talk over PCIe").
- pcie3/pcie4/pcie5: all GPUs of the node under one socket (one root complex; peer
  traffic crosses it, so the per-GPU PCIe link is the limit).
- pcie4-2socket: the GPUs are split evenly over two sockets (first half on socket 0),
  joined by the "upi" link. GPU peer traffic between sockets is staged through host
  memory over QPI/UPI, so any ring or collective spanning both sockets is limited by that
  link. A node with 4 GPUs or fewer keeps them in one socket (data README: runs on <= 4
  GPUs may stay inside one socket). A cluster file may give any split ("sockets").
- shm: processes of one host (the "cpu" placeholder device) over loopback.
- More than one node: each node has a NIC vertex on socket 0 (edge with the inter link's
  bandwidth), and all NICs hang off one "fabric" switch with the same link: one port per
  node, a non-blocking switch. inter="none" needs a single node; with one node the inter
  id is checked but ignored.
- Latencies: a link file's latency_us is one GPU-to-GPU hop (NCCL's per-hop model). Where
  the hop goes through a switch or root vertex (a star), each of the two edges carries
  half of it, so a GPU -> switch -> GPU path costs one hop; direct edges (bridge, UPI)
  carry all of it. For the network, the NIC-to-fabric edges carry half the inter
  latency each and the host-to-NIC edge none, so node-to-node costs one network hop.
- Routes are shortest paths by latency (cached per pair), so NVLink is preferred to
  PCIe, and routes never depend on bandwidth (more bandwidth never slows anything).
- Default intra (intra=None): nvswitch when the GPU has NVLink and is a switched part
  (SXM/OAM modules: id contains "sxm", or h20, h800, b200, mi250x, mi300x), else
  pcie<gen> of the GPU ("shm" for the cpu placeholder). A mixed node takes nvswitch only
  if all its GPUs would, else the lowest PCIe generation among them.

Cluster files (JSON, see docs/cluster-file.md) describe nodes that differ, mixed GPUs,
socket splits and link overrides; load_cluster_file reads them.
"""
from __future__ import annotations

import functools
import itertools
import math
import numbers
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx

from .errors import read_json
from .hardware import HW_DIR, GpuSpec, HardwareError, gpu_ids, link_ids, load_gpu, load_link
from .limits import BOUNDS

INTRA_IDS = ("nvswitch", "nvlink-bridge", "pcie3", "pcie4", "pcie4-2socket", "pcie5", "shm")
INTER_IDS = ("none", "ethernet", "ib-hdr", "ib-ndr", "roce")
CLUSTER_DIR = HW_DIR / "clusters"
MAX_GPUS = int(BOUNDS["gpus"].hi)     # as for --gpus: the search is designed up to 1,024 GPUs
SWITCHED_PARTS = ("h20", "h800-sxm5-80gb", "b200", "mi250x", "mi300x")   # no "sxm" in the id

_INTRA_TEXT = {"nvswitch": "NVSwitch", "nvlink-bridge": "NVLink bridges in pairs over PCIe",
               "pcie3": "PCIe 3.0", "pcie4": "PCIe 4.0", "pcie5": "PCIe 5.0",
               "pcie4-2socket": "PCIe 4.0 over two CPU sockets", "shm": "shared memory"}
_INTER_TEXT = {"ethernet": "Ethernet", "ib-hdr": "InfiniBand HDR", "ib-ndr": "InfiniBand NDR",
               "roce": "RoCE"}


@dataclass(frozen=True, eq=False)
class Cluster:
    """GPUs and the links between them. Treat `graph` as read-only: routes and the
    communication model's load patterns are cached on the object. eq=False: clusters
    compare and hash by identity (cheap cache keys); build_cluster returns the same
    object for the same arguments."""

    graph: nx.Graph
    gpus: tuple[GpuSpec, ...]          # GPU of each rank
    node_of: tuple[int, ...]           # node index of each rank
    intra: str                         # intra id of all nodes, or "mixed"
    inter: str                         # inter id ("none" for one node)
    node_intra: tuple[str, ...] = ()   # intra id of each node
    name: str = ""                     # cluster file it came from, if any
    # every node is the same (GPUs, intra link, socket split) and holds consecutive ranks:
    # swapping two nodes maps the graph onto itself, so routes from one node's ranks
    # give every node's (route)
    identical_nodes: bool = False
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def n(self) -> int:
        return len(self.gpus)

    @property
    def nodes(self) -> int:
        return self.node_of[-1] + 1 if self.node_of else 0

    @property
    def uniform(self) -> bool:
        return len({g.id for g in self.gpus}) <= 1

    def slowest(self, n: int, dtype: str) -> GpuSpec:
        """The GPU of the first n ranks with the lowest peak at dtype (cached: 1,024-rank
        searches ask for every plan)."""
        key = ("slowest", n, dtype)
        if key not in self._cache:
            self._cache[key] = self.gpus[0] if self.uniform else \
                min(self.gpus[:n], key=lambda g: g.peak(dtype))
        return self._cache[key]

    def usable_memory(self, n: int) -> float:
        """The smallest usable GPU memory (bytes, GpuSpec.usable_bytes) of the first n ranks (cached)."""
        key = ("usable_memory", n)
        if key not in self._cache:
            self._cache[key] = min(g.usable_bytes for g in self.gpus[:n])
        return self._cache[key]

    def describe(self) -> str:
        runs = [(gid, len(list(grp))) for gid, grp in itertools.groupby(g.id for g in self.gpus)]
        spec = {g.id: g for g in self.gpus}
        counts: dict[str, int] = {}
        for gid, c in runs:
            counts[gid] = counts.get(gid, 0) + c
        gpus = " + ".join(f"{c}x {spec[gid].name} ({spec[gid].memory_bytes / 2**30:.0f} GB)"
                          for gid, c in counts.items())
        texts = []
        for i, intra in enumerate(self.node_intra):
            t = _INTRA_TEXT.get(intra, intra)
            if intra == "pcie4-2socket" and self._sockets(i) < 2:
                t = "PCIe 4.0 in one CPU socket"
            if t not in texts:
                texts.append(t)
        s = f"{gpus} in {self.nodes} node{'s' if self.nodes > 1 else ''}, {' / '.join(texts)}"
        if self.nodes > 1:
            s += f", {_INTER_TEXT.get(self.inter, self.inter)} between nodes"
        return s

    def _sockets(self, node: int) -> int:
        return sum(1 for v, d in self.graph.nodes(data=True)
                   if d.get("kind") == "socket" and d.get("node") == node)

    def graph_dict(self) -> dict:
        """JSON form of the graph: vertices with their attributes, edges with link id,
        bandwidth (GB/s per direction) and latency (us)."""
        g = self.graph
        nodes = [{"id": v} | {k: d[k] for k in ("kind", "node", "socket", "rank", "gpu") if k in d}
                 for v, d in g.nodes(data=True)]
        edges = [{"u": u, "v": v, "link": d.get("link", "?"), "bw_gbps": round(d.get("bw", 0.0) / 1e9, 4),
                  "latency_us": round(d.get("latency", 0.0) * 1e6, 4)} for u, v, d in g.edges(data=True)]
        return {"nodes": nodes, "edges": edges}

    def to_dict(self) -> dict:
        links: dict[str, dict] = {}
        for _, _, d in self.graph.edges(data=True):
            cur = links.setdefault(d["link"], {"bw_gbps": math.inf, "latency_us": 0.0, "edges": 0})
            cur["bw_gbps"] = min(cur["bw_gbps"], round(d["bw"] / 1e9, 4))
            cur["latency_us"] = max(cur["latency_us"], round(d["latency"] * 1e6, 4))
            cur["edges"] += 1
        return {
            "describe": self.describe(), "name": self.name,
            "n": self.n, "nodes": self.nodes, "uniform": self.uniform,
            "gpus": [g.id for g in self.gpus], "node_of": list(self.node_of),
            "intra": self.intra, "inter": self.inter, "node_intra": list(self.node_intra),
            "links": links,   # per link id: lowest bw, highest per-edge latency, edge count
        }

    # ------------------------------------------------------------ routing
    def route(self, a: int, b: int) -> tuple[tuple[tuple[str, str], ...], float]:
        """Directed edges from rank a to rank b and their summed latency (cached). Shortest
        paths by latency from each source rank; with identical nodes only the first node's
        ranks are sources, and rank a's paths are those of its twin in node 0 with node 0
        and a's node swapped (one Dijkstra per local GPU instead of one per rank)."""
        cache = self._cache.setdefault("routes", {})
        r = cache.get((a, b))
        if r is None:
            for x in (a, b):
                if isinstance(x, bool) or not isinstance(x, numbers.Integral) or not 0 <= x < self.n:
                    raise ValueError(f"rank {x!r} is not in this {self.n}-GPU cluster")
            a, b = int(a), int(b)
            swap = self._node_swap(self.node_of[a]) if self.identical_nodes else None
            src = self._cache.setdefault("sssp", {})
            start = swap(f"gpu{a}") if swap else f"gpu{a}"
            if start not in src:
                src[start] = nx.single_source_dijkstra_path(self.graph, start, weight="latency")
            verts = src[start][swap(f"gpu{b}") if swap else f"gpu{b}"]
            if swap:
                verts = [swap(v) for v in verts]
            edges = tuple(zip(verts, verts[1:]))
            r = cache[(a, b)] = (edges, sum(self.graph.edges[e]["latency"] for e in edges))
        return r

    def _node_swap(self, k: int):
        """The vertex map that swaps node 0 and node k (identical nodes, consecutive ranks)."""
        if k == 0:
            return None
        per = self.n // self.nodes

        def swap(v: str) -> str:
            if v.startswith("gpu"):
                r = int(v[3:])
                node = r // per
                return f"gpu{r + (k - node) * per if node == 0 else r - k * per if node == k else r}"
            for prefix in ("host", "nvswitch", "nic"):
                if v.startswith(prefix):
                    rest = v[len(prefix):]
                    num, dot, tail = rest.partition(".")
                    i = int(num)
                    return f"{prefix}{k if i == 0 else 0 if i == k else i}{dot}{tail}"
            return v        # the fabric
        return swap

    def path(self, a: int, b: int) -> list[tuple[str, str]]:
        """The route between ranks a and b as a list of directed edges (u, v); look the
        link, bw and latency up in graph.edges[u, v]."""
        return list(self.route(a, b)[0])


# ---------------------------------------------------------------- building
def _link_attrs(link_id: str, gpu: GpuSpec | None, overrides: dict) -> tuple[float, float]:
    """(bytes/s per direction, latency s) of a link, after cluster-file overrides."""
    spec = load_link(link_id)
    ov = overrides.get(link_id, {})
    bw = ov["bw_gbps"] * 1e9 if "bw_gbps" in ov else spec.bandwidth(gpu)
    lat = ov.get("latency_us", spec.latency_us) * 1e-6
    return bw, lat


def _has_nvlink(g: GpuSpec) -> bool:
    return bool(g.nvlink_gbps)


def default_intra(gpus: tuple[GpuSpec, ...]) -> str:
    """The intra id a node of these GPUs most likely has (rules in the module doc)."""
    if all(_has_nvlink(g) and ("sxm" in g.id or g.id in SWITCHED_PARTS) for g in gpus):
        return "nvswitch"
    if any(g.pcie_gen == 0 for g in gpus):
        return "shm"
    return f"pcie{min(max(min(g.pcie_gen for g in gpus), 3), 5)}"


def _pcie_link(g: GpuSpec, slot_gen: int | None) -> str:
    if g.pcie_gen == 0:
        return "shm"
    gen = min(slot_gen, g.pcie_gen) if slot_gen else g.pcie_gen
    return f"pcie{min(max(gen, 3), 5)}"


def _default_sockets(intra: str, count: int) -> tuple[int, ...]:
    # Tried for issue 14: filling socket 0 first (6 GPUs as 4 + 2, as CUDA_VISIBLE_DEVICES=0-5
    # would on an 8-GPU box) fixes xDiT's CogVideoX u2r3 rows but breaks its ulysses=3 rows
    # (then +100%), so the published 6-GPU runs look split 3 + 3; the even split stays.
    if intra == "pcie4-2socket" and count > 4:
        return ((count + 1) // 2, count // 2)
    return (count,)


def _no_nvlink(g: GpuSpec, intra: str) -> HardwareError:
    return HardwareError(f"GPU {g.id} ({g.name}) has no NVLink, so intra '{intra}' is impossible; "
                         f"use pcie{max(g.pcie_gen, 3)} (or pcie4-2socket for a two-socket box)")


def _build(nodes: list[tuple[tuple[GpuSpec, ...], str, tuple[int, ...] | None]], inter: str,
           overrides: dict | None = None, name: str = "") -> Cluster:
    """nodes: (GPUs, intra id, socket split or None) per node, already validated."""
    ov = overrides or {}
    g = nx.Graph()
    gpus: list[GpuSpec] = []
    node_of: list[int] = []
    for ni, (specs, intra, sockets) in enumerate(nodes):
        where = f" (node {ni})" if len(nodes) > 1 else ""
        sockets = sockets or _default_sockets(intra, len(specs))
        socks = [f"host{ni}.s{k}" for k in range(len(sockets))]
        for k, s in enumerate(socks):
            g.add_node(s, kind="socket", node=ni, socket=k)
        for s, t in itertools.combinations(socks, 2):
            bw, lat = _link_attrs("upi", None, ov)
            g.add_edge(s, t, link="upi", bw=bw, latency=lat)
        slot_gen = int(intra[4]) if intra.startswith("pcie") else None
        socket_of = [k for k, c in enumerate(sockets) for _ in range(c)]
        if intra == "nvswitch":
            g.add_node(f"nvswitch{ni}", kind="switch", node=ni)
        ranks = []
        for li, spec in enumerate(specs):
            r = len(gpus)
            gpus.append(spec)
            node_of.append(ni)
            ranks.append(r)
            v = f"gpu{r}"
            g.add_node(v, kind="gpu", node=ni, rank=r, gpu=spec.id)
            link = "shm" if intra == "shm" else _pcie_link(spec, slot_gen)
            bw, lat = _link_attrs(link, spec, ov)
            g.add_edge(v, socks[socket_of[li]], link=link, bw=bw, latency=lat / 2)
            if intra == "nvswitch":
                if not _has_nvlink(spec):
                    raise HardwareError(str(_no_nvlink(spec, intra)) + where)
                bw, lat = _link_attrs("nvswitch", spec, ov)
                g.add_edge(v, f"nvswitch{ni}", link="nvswitch", bw=bw, latency=lat / 2)
        if intra == "nvlink-bridge":
            for a, b in zip(ranks[0::2], ranks[1::2]):
                for r in (a, b):
                    if not _has_nvlink(gpus[r]):
                        raise HardwareError(str(_no_nvlink(gpus[r], intra)) + where)
                (bwa, lat), (bwb, _) = (_link_attrs("nvlink-bridge", gpus[r], ov) for r in (a, b))
                g.add_edge(f"gpu{a}", f"gpu{b}", link="nvlink-bridge", bw=min(bwa, bwb), latency=lat)
    if len(nodes) > 1:
        g.add_node("fabric", kind="fabric")
        bw, lat = _link_attrs(inter, None, ov)
        for ni in range(len(nodes)):
            g.add_node(f"nic{ni}", kind="nic", node=ni)
            g.add_edge(f"host{ni}.s0", f"nic{ni}", link=inter, bw=bw, latency=0.0)
            g.add_edge(f"nic{ni}", "fabric", link=inter, bw=bw, latency=lat / 2)
    intras = [n[1] for n in nodes]
    shapes = {(tuple(x.id for x in specs), intra, tuple(sockets or _default_sockets(intra, len(specs))))
              for specs, intra, sockets in nodes}
    return Cluster(graph=g, gpus=tuple(gpus), node_of=tuple(node_of),
                   intra=intras[0] if len(set(intras)) == 1 else "mixed",
                   inter=inter if len(nodes) > 1 else "none",
                   node_intra=tuple(intras), name=name, identical_nodes=len(nodes) > 1 and len(shapes) == 1)


def _check_id(kind: str, value: Any, known: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in known:
        raise HardwareError(f"unknown {kind} {value!r}; known: {', '.join(known)}")
    return value


def _check_count(what: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise HardwareError(f"{what} must be a positive integer, got {value!r}")
    return value


def build_cluster(gpu: str, gpus: int, nodes: int = 1, intra: str | None = None,
                  inter: str = "none") -> Cluster:
    """`gpus` GPUs of one type spread evenly over `nodes` identical nodes. Cached: the
    same arguments give the same Cluster object."""
    if not isinstance(gpu, str) or gpu not in gpu_ids():
        raise HardwareError(f"unknown GPU {gpu!r}; known: {', '.join(gpu_ids())}")
    _check_count("gpus", gpus)
    _check_count("nodes", nodes)
    if gpus > MAX_GPUS:
        raise HardwareError(f"gpus={gpus}: at most {MAX_GPUS} (planner.limits)")
    if gpus % nodes:
        raise HardwareError(f"gpus={gpus} cannot be split evenly over nodes={nodes}; "
                            f"use a multiple of {nodes} GPUs or a cluster file")
    if intra is not None:
        _check_id("intra", intra, INTRA_IDS)
    _check_id("inter", inter, INTER_IDS)
    if nodes > 1 and inter == "none":
        raise HardwareError(f"nodes={nodes} needs an inter-node link but inter='none'; "
                            f"use one of {', '.join(INTER_IDS[1:])}")
    return _build_cached(gpu, gpus, nodes, intra, inter)


@functools.lru_cache(maxsize=256)
def _build_cached(gpu: str, gpus: int, nodes: int, intra: str | None, inter: str) -> Cluster:
    spec = load_gpu(gpu)
    per = (spec,) * (gpus // nodes)
    intra = intra or default_intra(per)
    return _build([(per, intra, None)] * nodes, inter)


# ---------------------------------------------------------------- cluster files
_TOP_KEYS = ("name", "notes", "nodes", "inter", "links")
_NODE_KEYS = ("gpus", "intra", "sockets", "notes")
_OVERRIDE_KEYS = ("bw_gbps", "latency_us")


def _is_num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _parse(d: Any) -> tuple[list, str, dict]:
    """Validate a cluster document; raises HardwareError without the file name."""
    if not isinstance(d, dict):
        raise HardwareError(f"the top level must be a JSON object with 'nodes', got {type(d).__name__}")
    bad = [k for k in d if k not in _TOP_KEYS]
    if bad:
        raise HardwareError(f"unknown key {bad[0]!r}; accepted: {', '.join(_TOP_KEYS)}")
    if "nodes" not in d:
        raise HardwareError("missing 'nodes' (a list of nodes, each with 'gpus' and 'intra')")
    raw_nodes = d["nodes"]
    if not isinstance(raw_nodes, list) or not raw_nodes:
        raise HardwareError("'nodes' must be a non-empty list of node objects")
    if len(raw_nodes) > MAX_GPUS:
        raise HardwareError(f"{len(raw_nodes)} nodes: at most {MAX_GPUS} (planner.limits)")
    for key in ("name", "notes"):
        if key in d and not isinstance(d[key], str):
            raise HardwareError(f"'{key}' must be a string (free text), got {type(d[key]).__name__}")
    inter = _check_id("inter", d.get("inter", "none"), INTER_IDS)
    if len(raw_nodes) > 1 and inter == "none":
        raise HardwareError(f"{len(raw_nodes)} nodes need an 'inter' link; "
                            f"use one of {', '.join(INTER_IDS[1:])}")
    links = d.get("links", {})
    if not isinstance(links, dict):
        raise HardwareError("'links' must be an object: link id -> {bw_gbps, latency_us}")
    overrides = {}
    for lid, ov in links.items():
        _check_id("link", lid, link_ids())
        if not isinstance(ov, dict) or not ov:
            raise HardwareError(f"links.{lid} must be an object with bw_gbps and/or latency_us")
        for k, v in ov.items():
            if k not in _OVERRIDE_KEYS:
                raise HardwareError(f"links.{lid}: unknown key {k!r}; accepted: {', '.join(_OVERRIDE_KEYS)}")
            if not _is_num(v) or v < 0 or (k == "bw_gbps" and v == 0):
                raise HardwareError(f"links.{lid}.{k} must be a {'positive' if k == 'bw_gbps' else 'non-negative'}"
                                    f" number, got {v!r}")
        overrides[lid] = dict(ov)
    nodes, total = [], 0
    for i, nd in enumerate(raw_nodes):
        where = f"node {i}"
        if not isinstance(nd, dict):
            raise HardwareError(f"{where} must be an object with 'gpus', got {type(nd).__name__}")
        bad = [k for k in nd if k not in _NODE_KEYS]
        if bad:
            raise HardwareError(f"{where}: unknown key {bad[0]!r}; accepted: {', '.join(_NODE_KEYS)}")
        if "gpus" not in nd:
            raise HardwareError(f"{where}: missing 'gpus' (a list of GPU ids or an object id -> count)")
        ids = _gpu_list(nd["gpus"], where)
        total += len(ids)
        if total > MAX_GPUS:
            raise HardwareError(f"more than {MAX_GPUS} GPUs in the file (at {where}); at most {MAX_GPUS} (planner.limits)")
        specs = tuple(load_gpu(_check_id(f"GPU in {where}:", x, gpu_ids())) for x in ids)
        intra = nd.get("intra")
        intra = default_intra(specs) if intra is None else _check_id(f"intra in {where}:", intra, INTRA_IDS)
        sockets = nd.get("sockets")
        if sockets is not None:
            if (not isinstance(sockets, list) or not sockets
                    or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in sockets)
                    or sum(sockets) != len(specs)):
                raise HardwareError(f"{where}: 'sockets' must be a list of positive GPU counts per socket "
                                    f"summing to its {len(specs)} GPUs, got {sockets!r}")
            sockets = tuple(sockets)
        nodes.append((specs, intra, sockets))
    return nodes, inter, overrides


def _gpu_list(x: Any, where: str) -> list:
    if isinstance(x, dict):
        out = []
        for gid, c in x.items():
            if isinstance(c, bool) or not isinstance(c, int) or not 1 <= c <= MAX_GPUS:
                raise HardwareError(f"{where}: count of GPU {gid!r} must be an integer from 1 to {MAX_GPUS}, got {c!r}")
            out += [gid] * c
            if len(out) > MAX_GPUS:
                break
        x = out
    if not isinstance(x, list):
        raise HardwareError(f"{where}: 'gpus' must be a list of GPU ids or an object id -> count, "
                            f"got {type(x).__name__}")
    if not x:
        raise HardwareError(f"{where} has no GPUs")
    return x


def cluster_from_dict(d: Any, source: str = "cluster") -> Cluster:
    """A Cluster from a parsed cluster document (the JSON schema of docs/cluster-file.md)."""
    try:
        nodes, inter, overrides = _parse(d)
        return _build(nodes, inter, overrides, name=source)
    except HardwareError as e:
        raise HardwareError(f"{source}: {e}") from None


def load_cluster_file(path: str | Path) -> Cluster:
    """Read a cluster file. A bare name (e.g. "3090+4090") is looked up in hw_profiles/clusters."""
    p = Path(path)
    if not p.exists() and (CLUSTER_DIR / f"{p.name}.json").exists() and p.parent == Path("."):
        p = CLUSTER_DIR / f"{p.name}.json"
    src = f"cluster file {p}"
    return cluster_from_dict(read_json(p, src, HardwareError), source=src)
