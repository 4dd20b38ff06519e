import json

import pytest

from planner.cluster import (CLUSTER_DIR, INTER_IDS, INTRA_IDS, Cluster, build_cluster,
                             cluster_from_dict, load_cluster_file)
from planner.hardware import HardwareError


def kinds(c: Cluster, kind: str) -> list[str]:
    return [v for v, d in c.graph.nodes(data=True) if d["kind"] == kind]


def links(c: Cluster) -> dict[str, int]:
    out: dict[str, int] = {}
    for _, _, d in c.graph.edges(data=True):
        out[d["link"]] = out.get(d["link"], 0) + 1
    return out


# ------------------------------------------------------------ intra ids
def test_nvswitch_node():
    c = build_cluster("a100-sxm4-80gb", 8)
    assert (c.n, c.nodes, c.intra, c.inter, c.uniform) == (8, 1, "nvswitch", "none", True)
    assert c.graph.number_of_nodes() == 8 + 1 + 1          # GPUs, NVSwitch, socket
    assert links(c) == {"nvswitch": 8, "pcie4": 8}
    bw = c.graph.edges["gpu0", "nvswitch0"]["bw"]
    assert bw == pytest.approx(300e9 * 0.8)
    # NVLink is preferred over PCIe
    assert c.path(0, 5) == [("gpu0", "nvswitch0"), ("nvswitch0", "gpu5")]
    assert c.describe() == "8x A100-SXM4-80GB (80 GB) in 1 node, NVSwitch"


def test_default_intra():
    assert build_cluster("h100-sxm5-80gb", 8).intra == "nvswitch"
    assert build_cluster("h20", 8).intra == "nvswitch"
    assert build_cluster("a100-pcie-80gb", 4).intra == "pcie4"
    assert build_cluster("l40", 4).intra == "pcie4"
    assert build_cluster("t4", 2).intra == "pcie3"
    assert build_cluster("h100-pcie-80gb", 2).intra == "pcie5"
    assert build_cluster("cpu", 2).intra == "shm"


def test_nvlink_bridge_pairs():
    c = build_cluster("rtx3090", 4, intra="nvlink-bridge")
    assert links(c) == {"nvlink-bridge": 2, "pcie4": 4}
    assert c.graph.has_edge("gpu0", "gpu1") and c.graph.has_edge("gpu2", "gpu3")
    assert not c.graph.has_edge("gpu1", "gpu2")
    assert c.path(0, 1) == [("gpu0", "gpu1")]
    assert c.path(1, 2) == [("gpu1", "host0.s0"), ("host0.s0", "gpu2")]
    assert c.graph.edges["gpu0", "gpu1"]["bw"] == pytest.approx(56.25e9 * 0.85)
    # odd count: the last GPU is unbridged
    assert links(build_cluster("rtx-a6000", 3, intra="nvlink-bridge"))["nvlink-bridge"] == 1


@pytest.mark.parametrize("intra,gen", [("pcie3", "pcie3"), ("pcie4", "pcie4"), ("pcie5", "pcie5")])
def test_pcie_single_socket(intra, gen):
    c = build_cluster("h100-pcie-80gb", 4, intra=intra)
    assert kinds(c, "socket") == ["host0.s0"]
    assert links(c) == {gen: 4}
    assert c.graph.number_of_nodes() == 5


def test_pcie_gen_capped_by_gpu():
    c = build_cluster("t4", 2, intra="pcie5")      # a Gen3 card in a Gen5 slot
    assert links(c) == {"pcie3": 2}


def test_pcie4_2socket():
    c = build_cluster("l40", 8, intra="pcie4-2socket")
    assert sorted(kinds(c, "socket")) == ["host0.s0", "host0.s1"]
    assert links(c) == {"pcie4": 8, "upi": 1}
    assert c.graph.has_edge("gpu3", "host0.s0") and c.graph.has_edge("gpu4", "host0.s1")
    assert c.describe() == "8x L40 (48 GB) in 1 node, PCIe 4.0 over two CPU sockets"
    assert [d for _, _, d in c.graph.edges(data=True) if d["link"] == "upi"][0]["bw"] == 10e9
    # <= 4 GPUs stay in one socket
    small = build_cluster("l40", 4, intra="pcie4-2socket")
    assert kinds(small, "socket") == ["host0.s0"] and "upi" not in links(small)


def test_shm_cpu():
    c = build_cluster("cpu", 2)
    assert links(c) == {"shm": 2}


@pytest.mark.parametrize("inter", INTER_IDS[1:])
def test_inter_node(inter):
    c = build_cluster("a100-sxm4-80gb", 16, nodes=2, inter=inter)
    assert (c.n, c.nodes, c.inter) == (16, 2, inter)
    assert c.node_of == (0,) * 8 + (1,) * 8
    assert sorted(kinds(c, "nic")) == ["nic0", "nic1"] and kinds(c, "fabric") == ["fabric"]
    assert links(c)[inter] == 4                     # host-nic and nic-fabric per node
    assert c.graph.number_of_nodes() == 2 * 10 + 2 + 1
    hops = [c.graph.edges[e]["link"] for e in c.path(0, 8)]
    assert inter in hops and "nvswitch" not in hops


def test_inter_ignored_for_one_node():
    c = build_cluster("l40", 4, nodes=1, inter="ethernet")
    assert c.inter == "none" and "ethernet" not in links(c)


def test_build_is_cached_and_all_ids_build():
    assert build_cluster("l40", 8) is build_cluster("l40", 8)
    for intra in INTRA_IDS:
        gpu = {"nvswitch": "h100-sxm5-80gb", "nvlink-bridge": "a100-pcie-80gb", "shm": "cpu"}.get(intra, "l40")
        assert build_cluster(gpu, 8, intra=intra).n == 8


def test_to_dict_is_json():
    c = build_cluster("l40", 16, nodes=2, intra="pcie4-2socket", inter="roce")
    d = json.loads(json.dumps(c.to_dict()))
    assert d["n"] == 16 and d["links"]["upi"]["edges"] == 2 and d["inter"] == "roce"


# ------------------------------------------------------------ errors
@pytest.mark.parametrize("args,bad", [
    (("a999", 8), "a999"),
    (("l40", 0), "gpus"),
    (("l40", 8, 0), "nodes"),
    (("l40", 6, 4, None, "ethernet"), "nodes=4"),
    (("l40", 8, 1, "nvlink9"), "nvlink9"),
    (("l40", 8, 2, None, "token-ring"), "token-ring"),
    (("l40", 16, 2, None, "none"), "inter"),
    (("l40", 8, 1, "nvswitch"), "l40"),
    (("rtx4090", 2, 1, "nvlink-bridge"), "rtx4090"),
    (("l40", "8"), "'8'"),
])
def test_bad_inputs(args, bad):
    with pytest.raises(HardwareError) as e:
        build_cluster(*args)
    msg = str(e.value)
    assert bad in msg and "\n" not in msg


def test_nvswitch_error_suggests_pcie():
    with pytest.raises(HardwareError, match="pcie4"):
        build_cluster("l40", 8, intra="nvswitch")


# ------------------------------------------------------------ cluster files
def test_example_files_load():
    c = load_cluster_file(CLUSTER_DIR / "a100x4+l40x4.json")
    assert [g.id for g in c.gpus] == ["a100-sxm4-80gb"] * 4 + ["l40"] * 4
    assert (c.nodes, c.intra, c.inter, c.node_intra) == (2, "mixed", "ib-hdr", ("nvswitch", "pcie4"))
    assert not c.uniform
    m = load_cluster_file("3090+4090")
    assert {g.id for g in m.gpus} == {"rtx3090", "rtx4090"} and not m.uniform
    assert m.graph.edges["gpu0", "host0.s0"]["bw"] == pytest.approx(12e9)   # override
    assert "RTX-3090" in m.describe() and "RTX-4090" in m.describe()


def test_mixed_node_in_dict():
    c = cluster_from_dict({"nodes": [{"gpus": {"l40": 2, "l20": 2}, "intra": "pcie4-2socket",
                                      "sockets": [1, 3]}]})
    assert [g.id for g in c.gpus] == ["l40", "l40", "l20", "l20"]
    assert c.graph.has_edge("gpu1", "host0.s1")


def test_link_override_latency():
    c = cluster_from_dict({"inter": "ethernet", "links": {"ethernet": {"bw_gbps": 1.2, "latency_us": 50}},
                           "nodes": [{"gpus": ["l4"]}, {"gpus": ["l4"]}]})
    e = c.graph.edges["nic0", "fabric"]
    assert e["bw"] == pytest.approx(1.2e9) and e["latency"] == pytest.approx(25e-6)


@pytest.mark.parametrize("text,bad", [
    ("{not json", "not valid JSON"),
    ('["l40"]', "top level"),
    ('{"inter": "none"}', "'nodes'"),
    ('{"nodes": []}', "'nodes'"),
    ('{"nodes": [{"gpus": ["a999"]}]}', "a999"),
    ('{"nodes": [{"gpus": []}]}', "no GPUs"),
    ('{"nodes": [{"intra": "pcie4"}]}', "'gpus'"),
    ('{"nodes": [{"gpus": "l40"}]}', "'gpus'"),
    ('{"nodes": [{"gpus": [4]}]}', "4"),
    ('{"nodes": [{"gpus": {"l40": 0}}]}', "must be an integer from 1 to 1024"),
    ('{"nodes": [{"gpus": {"l40": 1000000000000}}]}', "from 1 to 1024"),   # was a MemoryError
    ('{"nodes": [{"gpus": ["l40"]}], "name": 5}', "'name' must be a string"),
    ("[" * 100000, "nested too deeply"),
    ('{"nodes": [{"gpus": ["l40"], "intra": "pcie9"}]}', "pcie9"),
    ('{"nodes": [{"gpus": ["l40"]}, {"gpus": ["l40"]}]}', "inter"),
    ('{"inter": "ib-xdr", "nodes": [{"gpus": ["l40"]}]}', "ib-xdr"),
    ('{"nodes": [{"gpus": ["l40", "l40"], "sockets": [1]}]}', "sockets"),
    ('{"nodes": [{"gpus": ["l40"], "intra": "nvswitch"}]}', "l40"),
    ('{"nodes": [{"gpus": ["l40"]}], "links": {"pcie4": {"bw_gbps": -1}}}', "bw_gbps"),
    ('{"nodes": [{"gpus": ["l40"]}], "links": {"pcie4": {"speed": 1}}}', "speed"),
    ('{"nodes": [{"gpus": ["l40"]}], "links": {"warp": {"bw_gbps": 1}}}', "warp"),
    ('{"nodes": [{"gpus": ["l40"]}], "nodez": 1}', "nodez"),
    ('{"nodes": ["l40"]}', "node 0"),
])
def test_malformed_files(tmp_path, text, bad):
    p = tmp_path / "bad.json"
    p.write_text(text)
    with pytest.raises(HardwareError) as e:
        load_cluster_file(p)
    msg = str(e.value)
    assert str(p) in msg and bad in msg and "\n" not in msg


def test_missing_file(tmp_path):
    with pytest.raises(HardwareError, match="not found"):
        load_cluster_file(tmp_path / "nope.json")


@pytest.mark.parametrize("gpu,intra,inter", [("l40", "pcie4-2socket", "ethernet"),
                                             ("h100-sxm5-80gb", "nvswitch", "ib-ndr"),
                                             ("rtx3090", "nvlink-bridge", "roce")])
def test_routes_of_identical_nodes_equal_dijkstra_on_the_whole_graph(gpu, intra, inter):
    """Cluster.route maps node 0's shortest paths onto the other nodes; they are the
    shortest paths of the whole graph (same latency, same links in order)."""
    import networkx as nx
    c = build_cluster(gpu, 24, 3, intra, inter)
    assert c.identical_nodes
    for a in range(c.n):
        for b in range(0, c.n, 5):
            if a == b:
                continue
            edges, lat = c.route(a, b)
            verts = nx.dijkstra_path(c.graph, f"gpu{a}", f"gpu{b}", weight="latency")
            want = sum(c.graph.edges[e]["latency"] for e in zip(verts, verts[1:]))
            assert lat == pytest.approx(want, rel=1e-12, abs=1e-15)
            assert [c.graph.edges[e]["link"] for e in edges] == [c.graph.edges[e]["link"]
                                                                 for e in zip(verts, verts[1:])]
            assert edges[0][0] == f"gpu{a}" and edges[-1][1] == f"gpu{b}"
