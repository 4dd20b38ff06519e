import timeit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.cluster import build_cluster, cluster_from_dict
from planner.cost.comm import KINDS, bottleneck_link, collective_time
from planner.hardware import Calibration, CommCurve, Profile, load_link

P = Profile()
PCIE4 = load_link("pcie4").bw_gbps * 1e9


@pytest.fixture(scope="module")
def l40x8():
    return build_cluster("l40", 8, intra="pcie4-2socket")


def test_socket_crossing_is_slower(l40x8):
    same = collective_time(l40x8, "all_reduce", [[0, 1, 2, 3]], 1e8, P)
    cross = collective_time(l40x8, "all_reduce", [[0, 1, 4, 5]], 1e8, P)
    assert same < cross
    assert bottleneck_link(l40x8, [[0, 1, 2, 3]]) == "pcie4"
    assert bottleneck_link(l40x8, [[0, 1, 4, 5]]) == "upi"
    assert bottleneck_link(l40x8, [range(8)]) == "upi"


def test_concurrent_groups_share_the_socket_link(l40x8):
    one = collective_time(l40x8, "all_reduce", [[0, 4]], 1e8, P)
    two = collective_time(l40x8, "all_reduce", [[0, 4], [1, 5]], 1e8, P)
    assert two > one * 1.9
    # groups inside different sockets do not interfere
    a = collective_time(l40x8, "all_gather", [[0, 1, 2, 3]], 1e8, P)
    b = collective_time(l40x8, "all_gather", [[0, 1, 2, 3], [4, 5, 6, 7]], 1e8, P)
    assert a == pytest.approx(b)


def test_nvswitch_all_reduce_a100():
    c = build_cluster("a100-sxm4-80gb", 8)
    t = collective_time(c, "all_reduce", [range(8)], 1e9, P)
    expect = 2 * 7 / 8 * 1e9 / (300e9 * 0.8) + 2 * 7 * 3.4e-6
    assert t == pytest.approx(expect, rel=0.01)
    assert bottleneck_link(c, [range(8)]) == "nvswitch"


def test_all_to_all_pcie_one_socket():
    c = build_cluster("l40", 8, intra="pcie4")
    t = collective_time(c, "all_to_all", [range(8)], 1e9, P)
    assert t == pytest.approx(7 / 8 * 1e9 / PCIE4, rel=0.01)


def test_ring_byte_factors():
    c = build_cluster("l40", 4, intra="pcie4")
    lat = load_link("pcie4").latency_us * 1e-6
    nb = 1e9
    assert collective_time(c, "all_gather", [range(4)], nb, P) == pytest.approx(3 / 4 * nb / PCIE4 + 3 * lat)
    assert collective_time(c, "reduce_scatter", [range(4)], nb, P) == pytest.approx(3 / 4 * nb / PCIE4 + 3 * lat)
    assert collective_time(c, "broadcast", [[2, 0, 1, 3]], nb, P) == pytest.approx(nb / PCIE4 + 3 * lat)
    assert collective_time(c, "p2p", [(0, 3)], nb, P) == pytest.approx(nb / PCIE4 + lat)


def test_ethernet_between_nodes():
    c = build_cluster("a100-sxm4-80gb", 16, nodes=2, inter="ethernet")
    assert bottleneck_link(c, [range(16)]) == "ethernet"
    assert bottleneck_link(c, [[0, 8]], "p2p") == "ethernet"
    assert bottleneck_link(c, [range(8)]) == "nvswitch"
    # two groups, each inside one node, never touch the network
    assert bottleneck_link(c, [range(8), range(8, 16)], "all_to_all") == "nvswitch"


def test_single_rank_and_zero_bytes_cost_nothing(l40x8):
    assert collective_time(l40x8, "all_reduce", [[0], [1]], 1e6, P) == 0.0
    assert collective_time(l40x8, "all_reduce", [[0, 1]], 0, P) == 0.0
    assert bottleneck_link(l40x8, [[3]]) == "none"


def test_bad_kind_and_groups(l40x8):
    with pytest.raises(ValueError, match="all_to_all"):
        collective_time(l40x8, "allreduce", [[0, 1]], 1e6, P)
    with pytest.raises(ValueError, match="p2p"):
        collective_time(l40x8, "p2p", [[0, 1, 2]], 1e6, P)
    with pytest.raises(ValueError, match="rank 9"):
        collective_time(l40x8, "all_reduce", [[0, 9]], 1e6, P)
    with pytest.raises(ValueError, match="repeats"):
        collective_time(l40x8, "all_reduce", [[0, 0]], 1e6, P)


def test_link_efficiency_applies_and_can_move_the_bottleneck():
    c = build_cluster("l40", 8, intra="pcie4-2socket")
    base = collective_time(c, "all_reduce", [range(8)], 1e9, P)
    slow_upi = Profile(calibration=Calibration(coll_eff=(("upi", 0.5),)))
    assert collective_time(c, "all_reduce", [range(8)], 1e9, slow_upi) > base * 1.8
    # a poor PCIe efficiency makes pcie4 the limit even across sockets
    slow_pcie = Profile(calibration=Calibration(coll_eff=(("pcie4", 0.2),)))
    assert bottleneck_link(c, [range(8)], profile=slow_pcie) == "pcie4"


def test_measured_curve_wins():
    c = build_cluster("l40", 8, intra="pcie4-2socket")
    curve = CommCurve("all_reduce", 8, (1e3, 1e9), (1e-4, 0.5))
    prof = Profile(measured_comm=((("upi", "all_reduce", 8), curve),))
    assert collective_time(c, "all_reduce", [range(8)], 1e9, prof) == pytest.approx(0.5)
    # other group sizes and kinds are still modelled
    assert collective_time(c, "all_gather", [range(8)], 1e9, prof) == \
        collective_time(c, "all_gather", [range(8)], 1e9, P)


def test_all_kinds_run_everywhere():
    for c in (build_cluster("h100-sxm5-80gb", 16, nodes=2, inter="ib-ndr"),
              build_cluster("rtx3090", 8, intra="nvlink-bridge")):
        for kind in KINDS:
            groups = [(0, c.n - 1)] if kind == "p2p" else [range(c.n)]
            assert collective_time(c, kind, groups, 1e7, P) > 0


@settings(max_examples=60, deadline=None)
@given(bws=st.dictionaries(st.sampled_from(["pcie4", "upi", "nvswitch", "ib-hdr"]),
                           st.floats(0.5, 500), min_size=1),
       link=st.sampled_from(["pcie4", "upi", "nvswitch", "ib-hdr"]),
       scale=st.floats(1.0, 10.0),
       kind=st.sampled_from(KINDS),
       nbytes=st.floats(1e3, 1e10),
       groups=st.sampled_from([[range(16)], [[0, 8], [1, 12]], [[3, 5], [9, 10]],
                               [range(4), range(4, 8)], [[0, 1, 4, 5, 8, 12]]]))
def test_more_bandwidth_never_slower(bws, link, scale, kind, nbytes, groups):
    def cluster(over):
        return cluster_from_dict({
            "inter": "ib-hdr",
            "links": {k: {"bw_gbps": v} for k, v in over.items()},
            "nodes": [{"gpus": {"a100-sxm4-80gb": 8}, "intra": "nvswitch", "sockets": [4, 4]},
                      {"gpus": {"l40": 8}, "intra": "pcie4-2socket"}]})
    faster = dict(bws)
    faster[link] = faster.get(link, 25.0) * scale
    if link not in bws:
        bws = {**bws, link: 25.0}
    if kind == "p2p":
        groups = [tuple(g)[:2] for g in groups]
    t0 = collective_time(cluster(bws), kind, groups, nbytes, P)
    t1 = collective_time(cluster(faster), kind, groups, nbytes, P)
    assert t1 <= t0 * (1 + 1e-12)


def test_warm_call_is_fast():
    c = build_cluster("l40", 16, nodes=2, intra="pcie4-2socket", inter="roce")
    groups = ((0, 1, 2, 3), (4, 5, 6, 7), (8, 9, 10, 11), (12, 13, 14, 15))
    collective_time(c, "all_to_all", groups, 1e6, P)
    per_call = min(timeit.repeat(lambda: collective_time(c, "all_to_all", groups, 1e6, P),
                                 number=2000, repeat=3)) / 2000
    assert per_call < 50e-6        # a few microseconds normally; loose for slow CI machines


@pytest.mark.parametrize("gpu, intra", [("l40", "pcie4-2socket"), ("h100-sxm5-80gb", "nvswitch")])
def test_node_zero_shortcut_equals_routing_every_node(gpu, intra):
    """Identical nodes running the same groups each are routed from node 0 alone
    (comm._pattern); the result must equal routing every node's flows."""
    from planner.cost import comm
    from planner.layout import Layout
    cluster = build_cluster(gpu, 32, nodes=4, intra=intra, inter="ib-ndr")
    cases = 0
    for sizes in [(("ulysses", 4), ("dp", 8)), (("ring", 2), ("ulysses", 4), ("cfg", 4)),
                  (("tp", 8), ("dp", 4)), (("cfg", 2), ("pipefusion", 4), ("dp", 4))]:
        layout = Layout(sizes)
        for dim, _ in sizes:
            groups = layout.groups(dim)
            for kind in KINDS:
                if kind == "p2p":
                    groups_k = layout.ring_pairs(dim)
                    if not groups_k:
                        continue
                else:
                    groups_k = groups
                shortcut = comm._node_zero_groups(cluster, groups_k)
                cases += shortcut is not None
                assert comm._pattern(cluster, kind, groups_k) == comm._routed(cluster, kind, groups_k), \
                    (sizes, dim, kind)
    assert cases > 0      # the shortcut was taken somewhere
    # ranks that differ across nodes take the full routing
    assert comm._node_zero_groups(cluster, ((0, 1), (8, 10))) is None
    assert comm._node_zero_groups(cluster, ((0, 8),)) is None
