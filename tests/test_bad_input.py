"""Every command fed hostile input (issue 16): NaN, infinities, negative, huge, wrong type,
non-ASCII, empty, unreadable and malformed files, conflicting options. Each case must exit 2
with one line on stderr that names the bad value (NEEDLE) and says what is accepted (HINT),
print nothing on stdout, show no traceback, and leave no file behind, before any work
starts (run starts no rank, profile measures nothing). Cases run in this process through
cli.main, so the whole table takes seconds.

The number of kinds per command is in README.md, "Reliability"
(test_every_command_has_its_kinds keeps the two in step)."""
from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path

import pytest

from clitool import ROOT, run_cli
from planner.limits import cores, cpu_rank_limit

HINT = re.compile(r"accepted|must|known|give|use |write |only|at most|needs?|cannot|not |does not|expected|unrecognized"
                  r"|invalid|required|missing|lacks|choose|no |one of|fields|describes|measured|waited|ending in"
                  r"|is a directory|would overwrite|too deeply", re.I)
D = "{d}"      # the test's directory of input files and outputs


def _profile_doc(**device) -> dict:
    from test_profile_io import make_doc
    doc = make_doc()
    doc["device"].update(device)
    return doc


HEADER = "id,source,model,gpu,gpus,nodes,intra,inter,height,width,frames,steps,cfg,plan,compile,scope,latency_s"
ROW = "r1,src,pixart-alpha,l40,2,1,pcie4,,1024,1024,1,20,1,cfg=2,,,{lat}"


def _csv(*rows: str) -> str:
    return "\n".join((HEADER,) + rows) + "\n"


def _files(d: Path) -> None:
    """The input files the cases point at."""
    def put(name, text):
        (d / name).write_bytes(text if isinstance(text, bytes) else text.encode())
    good_cluster = {"nodes": [{"gpus": ["l40", "l40"], "intra": "pcie4"}]}
    put("cluster.json", json.dumps(good_cluster))
    put("notjson.json", "{not json")
    put("nan.json", '{"nodes": NaN}')
    put("empty.json", "")
    put("deep.json", "[" * 100000)
    put("binary.json", bytes(range(256)))
    put("list.json", "[1, 2]")
    put("cluster-huge.json", json.dumps({"nodes": [{"gpus": {"l40": 10**12}}]}))
    put("cluster-nvswitch.json", json.dumps({"nodes": [{"gpus": ["l40"], "intra": "nvswitch"}]}))
    (d / "adir.json").mkdir()
    (d / "weights-empty").mkdir()       # profile --model --weights: not a diffusers folder, or an incomplete one
    (d / "weights-partial").mkdir()
    put("weights-partial/model_index.json", json.dumps({"_class_name": "StableDiffusion3Pipeline",
                                                        "transformer": ["diffusers", "SD3Transformer2DModel"]}))
    (d / "adir.html").mkdir()
    (d / "adir.csv").mkdir()
    put("cpu-profile.json", json.dumps(_profile_doc()))
    put("l40-profile.json", json.dumps(_profile_doc(gpu_id="l40", dtype="bf16", peak_flops=181e12, memory_bw=864e9)))
    put("gtx-profile.json", json.dumps(_profile_doc(gpu_id="gtx9999")))
    emax = _profile_doc()
    emax["compute"]["curves"]["gemm"]["e_max"] = 1e6
    put("emax-profile.json", json.dumps(emax))
    eff = _profile_doc()
    eff["compute"]["curves"]["mem"]["points"][0][1] = 2.4
    put("eff-profile.json", json.dumps(eff))
    put("format-profile.json", json.dumps(_profile_doc() | {"format": "cluster"}))
    # calibration-schema CSVs
    put("good.csv", _csv(ROW.format(lat="1.5")))
    put("header.csv", HEADER + "\n")
    put("empty.csv", "")
    put("blank.csv", "\n")
    put("nocol.csv", "id,model\nx,sdxl\n")
    put("short.csv", _csv("r1,src,pixart-alpha,l40,2"))
    put("long.csv", _csv(ROW.format(lat="1.5") + ",extra,cells"))
    for name, lat in (("nan", "nan"), ("inf", "inf"), ("neg", "-1"), ("zero", "0"), ("abc", "abc"),
                      ("blanklat", ""), ("big", "1e400"), ("comma", '"1,5"'), ("arabic", "٣"), ("hex", "0x10"),
                      ("under", "1_000"), ("pinf", "+inf"), ("infinity", "Infinity"), ("huge", "1e7"), ("tiny", "1E-310"),
                      ("oomlat", "OOM"), ("newline", '"1\n5"')):
        put(f"{name}.csv", _csv(ROW.format(lat=lat)))
    put("quote.csv", _csv('r1,src,"pixart-alpha,l40,2,1,pcie4,,1024,1024,1,20,1,cfg=2,,,1.5'))
    put("nul.csv", _csv(ROW.format(lat="1.5")).replace("src", "s\0rc"))
    put("field.csv", _csv(ROW.format(lat="1.5")).replace("src", "x" * 200_000))
    put("bom16.csv", _csv(ROW.format(lat="1.5")).encode("utf-16"))
    put("latin1.csv", _csv(ROW.format(lat="1.5")).replace("src", "caf\xe9").encode("latin-1"))
    put("tabs.csv", _csv(ROW.format(lat="1.5")).replace(",", "\t"))
    put("json.csv", json.dumps({"rows": []}))
    put("oom-good.csv", _csv(ROW.format(lat="OOM")))
    put("oom-nan.csv", _csv(ROW.format(lat="nan")))
    put("oom-short.csv", _csv("r1,src,pixart-alpha"))
    put("oom-header.csv", HEADER + "\n")
    # documents for `report`
    plan = json.loads(run_cli("plan", "--json", "--gpus", "2").out)
    put("plan.json", json.dumps(plan))
    for i, bad in enumerate([{"plans": {}}, {"plans": [1, 2]}, {"plans": None}, {"scenario": []},
                             {"recommended": 5}, {"cluster": "x"}, {"plans": [{"plan": 3}]}]):
        put(f"plan-bad{i}.json", json.dumps(plan | bad))
    for i, key in enumerate(("plans", "scenario")):
        doc = copy.deepcopy(plan)
        doc.pop(key)
        put(f"plan-drop{i}.json", json.dumps(doc))
    put("string.json", '"a plan"')
    put("number.json", "42")


CASES: dict[str, list[tuple[list[str], str]]] = {
    "plan": [
        (["--model", "sdxxl"], "sdxxl"), (["--model", ""], "''"), (["--model", "SDXL"], "SDXL"),
        (["--gpu", "h1000"], "h1000"), (["--gpu", ""], "''"), (["--gpu", "../links/shm"], "../links/shm"),
        (["--gpus", "0"], "--gpus 0"), (["--gpus", "-1"], "--gpus -1"), (["--gpus", "1000000"], "--gpus 1000000"),
        (["--gpus", "1e3"], "--gpus 1e3"), (["--gpus", "8.0"], "--gpus 8.0"), (["--gpus", "nan"], "--gpus nan"),
        (["--gpus", "８"], "--gpus ８"), (["--gpus", ""], "--gpus ''"), (["--gpus", "1_000"], "--gpus 1_000"),
        (["--gpus", "3", "--nodes", "2", "--inter", "ethernet"], "gpus=3"), (["--nodes", "0"], "--nodes 0"),
        (["--nodes", "2"], "--nodes 2"), (["--nodes", "9", "--inter", "ethernet"], "--nodes 9"),
        (["--inter", "ethernet"], "--inter ethernet"), (["--inter", "warp"], "--inter warp"),
        (["--intra", "pcie9"], "--intra pcie9"), (["--intra", "nvswitch"], "nvswitch"),
        (["--cluster", "/nonexistent.json"], "/nonexistent.json"), (["--cluster", ""], "--cluster ''"),
        (["--cluster", f"{D}/adir.json"], "adir.json"), (["--cluster", f"{D}/notjson.json"], "notjson.json"),
        (["--cluster", f"{D}/nan.json"], "NaN"), (["--cluster", f"{D}/empty.json"], "empty.json"),
        (["--cluster", f"{D}/deep.json"], "deep.json"), (["--cluster", f"{D}/binary.json"], "binary.json"),
        (["--cluster", f"{D}/list.json"], "list"), (["--cluster", f"{D}/cluster-huge.json"], "1000000000000"),
        (["--cluster", f"{D}/cluster-nvswitch.json"], "nvswitch"),
        (["--cluster", f"{D}/cluster.json", "--gpu", "l40"], "--gpu"),
        (["--cluster", f"{D}/cluster.json", "--gpus", "4"], "--gpus"),
        (["--cluster", f"{D}/cluster.json", "--inter", "ethernet"], "--inter"),
        (["--height", "0"], "--height 0"), (["--height", "1000"], "height=1000"),
        (["--height", "100000"], "--height 100000"), (["--height", "1e3"], "--height 1e3"),
        (["--height", "nan"], "--height nan"), (["--width", "-8"], "--width -8"), (["--width", "1023"], "width=1023"),
        (["--frames", "0"], "--frames 0"), (["--frames", "2"], "frames=2"), (["--steps", "0"], "--steps 0"),
        (["--steps", "1000000"], "--steps 1000000"), (["--steps", "many"], "--steps many"),
        (["--steps", "20.5"], "--steps 20.5"), (["--steps", "inf"], "--steps inf"), (["--batch", "0"], "--batch 0"),
        (["--batch", "100000"], "--batch 100000"), (["--text-tokens", "-1"], "--text-tokens -1"),
        (["--text-tokens", "5000"], "--text-tokens 5000"), (["--dtype", "int4"], "--dtype int4"),
        (["--dtype", "bf16", "--gpu", "t4"], "--dtype bf16"), (["--dtype", "bf16", "--gpu", "v100-sxm2-32gb"], "bf16"),
        (["--dtype", "bf16", "--gpu", "rtx2080ti"], "bf16"), (["--dtype", "fp8", "--gpu", "a100-sxm4-80gb"], "fp8"),
        (["--dtype", ""], "--dtype"), (["--scope", "all"], "--scope all"),
        (["--plan", ""], "empty plan"), (["--plan", "cfg=2 foo=4"], "foo"), (["--plan", "cfg=٣"], "cfg=٣"),
        (["--gpus", "4", "--plan", "cfg=2 pipefusion=4"], "uses 8 GPUs"),
        (["--gpus", "32", "--plan", "ulysses=32"], "ulysses=32"), (["--plan", "cfg=x"], "cfg=x"),
        (["--plan", "cfg=2 cfg=2"], "'cfg' given twice"), (["--plan", "cfg=0"], "cfg=0"),
        (["--gpus", "2", "--plan", "cfg=2 | 5-6: hybridiff=2 k=9"], "k=9"),
        (["--gpus", "2", "--plan", "cfg=2 | 3-1: cfg=2"], "3-1"), (["--gpus", "2", "--plan", "cfg=2 | 19-30: cfg=2"], "19-30"),
        (["--gpus", "2", "--plan", "cfg=2 | ²-3: cfg=2"], "²-3"), (["--gpus", "2", "--plan", "hybridiff=2", "--no-cfg"], "hybridiff"),
        (["--top", "0"], "--top 0"), (["--top", "-5"], "--top -5"), (["--top", "abc"], "--top abc"),
        (["--approx-steps", "-1"], "--approx-steps -1"), (["--approx-steps", "1e9"], "--approx-steps 1e9"),
        (["--approx-window", "5"], "--approx-window 5"), (["--approx-window", "10-5"], "10-5"),
        (["--approx-window", "²-3"], "²-3"), (["--placement", "best"], "best"),
        (["--hw-profile", "/nonexistent.json"], "/nonexistent.json"), (["--hw-profile", ""], "--hw-profile ''"),
        (["--hw-profile", f"{D}/gtx-profile.json"], "gtx9999"), (["--hw-profile", f"{D}/cpu-profile.json"], "measured on cpu"),
        (["--hw-profile", f"{D}/cpu-profile.json", "--gpu", "cpu", "--dtype", "bf16"], "--dtype bf16"),
        (["--hw-profile", f"{D}/emax-profile.json", "--gpu", "cpu"], "1000000"),
        (["--hw-profile", f"{D}/eff-profile.json", "--gpu", "cpu"], "2.4"),
        (["--report", "x.txt"], "x.txt"), (["--report", "/nonexistent-dir/x.html"], "/nonexistent-dir"),
        (["--report", "/proc/x.html"], "/proc/x.html"), (["--report", f"{D}/adir.html"], "adir.html"),
        (["--report", ""], "''"), (["--trace", "x.html"], "x.html"), (["--trace", "/nonexistent/x.json"], "/nonexistent"),
        (["--report", f"{D}/ok.html", "--steps", "0"], "--steps 0"),
        (["--trace", f"{D}/ok.json", "--plan", "cfg=9"], "cfg=9"),
        (["--unknown-option"], "--unknown-option"), (["--json=yes"], "--json=yes"), (["extra"], "extra"),
        (["--steps"], "--steps"),
    ],
    "run": [
        (["--model", "opensora-1.2"], "--model opensora-1.2"), (["--model", ""], "--model "), (["--model", "ref-dit-xl"], "ref-dit-xl"),
        (["--backend", "mpi"], "--backend mpi"), (["--backend", ""], "--backend ''"),
        (["--nproc", "0"], "--nproc 0"), (["--nproc", "-2"], "--nproc -2"), (["--nproc", "100000"], "--nproc 100000"),
        (["--nproc", str(cpu_rank_limit() + 1)], f"--nproc {cpu_rank_limit() + 1}"), (["--nproc", "two"], "--nproc two"),
        (["--nproc", "3", "--plan", "cfg=2"], "uses 2 GPUs"), (["--plan", "cfg=2 foo=2"], "foo"),
        (["--plan", ""], "empty plan"), (["--plan", "ulysses=3"], "ulysses=3"),
        (["--plan", "tp=2", "--model", "sdxl", "--height", "20"], "height=20"),
        (["--plan", "ulysses=2", "--model", "sdxl", "--height", "16"], "2 latent rows need a multiple of 8"),
        (["--scale", "tiny", "--plan", "hybridiff=2 k=9"], "k=9"),
        (["--plan", "ulysses=2", "--model", "wan2.1-t2v-1.3b", "--frames", "3"], "3 frames"),
        (["--repeats", "0"], "--repeats 0"), (["--repeats", "1000"], "--repeats 1000"), (["--repeats", "x"], "--repeats x"),
        (["--warmup-runs", "-1"], "--warmup-runs -1"), (["--warmup-runs", "1000"], "--warmup-runs 1000"),
        (["--guidance", "nan"], "--guidance nan"), (["--guidance", "inf"], "--guidance inf"),
        (["--guidance", "-1"], "--guidance -1"), (["--guidance", "1e9"], "--guidance 1e9"),
        (["--tolerance", "nan"], "--tolerance nan"), (["--tolerance", "-0.1"], "--tolerance -0.1"),
        (["--tolerance", "2"], "--tolerance 2"), (["--seed", "-1"], "--seed -1"),
        (["--seed", str(2**64)], f"--seed {2**64}"), (["--seed", "1.5"], "--seed 1.5"),
        (["--timeout", "nan"], "--timeout nan"), (["--timeout", "inf"], "--timeout inf"),
        (["--timeout", "0"], "--timeout 0"), (["--timeout", "-5"], "--timeout -5"), (["--timeout", "1e9"], "--timeout 1e9"),
        (["--height", "100000"], "--height 100000"), (["--height", "0"], "--height 0"),
        (["--plan", "cfg=2", "--height", "16384", "--width", "16384", "--batch", "64"], "16384x16384"),
        (["--width", "1000"], "width=1000"), (["--frames", "0"], "--frames 0"), (["--frames", "2"], "frames=2"),
        (["--steps", "0"], "--steps 0"), (["--steps", "5000"], "--steps 5000"), (["--batch", "0"], "--batch 0"),
        (["--text-tokens", "-1"], "--text-tokens -1"), (["--dtype", "int8"], "--dtype int8"),
        (["--dtype", "tf32"], "--dtype tf32"), (["--dtype", "fp8"], "--dtype fp8"), (["--gpu", "l40"], "--gpu l40"),
        (["--plan", "cfg=2", "--order", "cfg,ring"], "--order cfg,ring"), (["--plan", "cfg=2", "--order", ""], "--order"),
        (["--plan", "cfg=2 ulysses=2", "--nproc", "4", "--order", "cfg,cfg"], "cfg,cfg"),
        (["--report", "run.txt"], "run.txt"), (["--report", "/nonexistent-dir/run.html"], "/nonexistent-dir"),
        (["--report", "/proc/run.html"], "/proc/run.html"), (["--report", f"{D}/adir.html"], "adir.html"),
        (["--hw-profile", "/nonexistent.json"], "/nonexistent.json"), (["--hw-profile", ""], "--hw-profile ''"),
        (["--hw-profile", f"{D}/l40-profile.json"], "measured on l40"), (["--hw-profile", f"{D}/emax-profile.json"], "e_max"),
        (["--report", f"{D}/ok.html", "--repeats", "0"], "--repeats 0"),
        (["--cluster", "x.json"], "--cluster"), (["--nodes", "2"], "--nodes"), (["--inter", "ethernet"], "--inter"),
        (["--scope", "pipeline"], "--scope"), (["--unknown"], "--unknown"), (["extra"], "extra"),
    ],
    "profile": [
        (["--nproc", "0"], "--nproc 0"), (["--nproc", "-1"], "--nproc -1"), (["--nproc", "two"], "--nproc two"),
        (["--nproc", "1e3"], "--nproc 1e3"), (["--nproc", "nan"], "--nproc nan"), (["--nproc", "100000"], "--nproc 100000"),
        (["--nproc", str(cpu_rank_limit() + 1), "--device", "cpu"], f"--nproc {cpu_rank_limit() + 1}"),
        (["--nproc", ""], "--nproc ''"), (["--nproc", "2.5"], "--nproc 2.5"), (["--nproc", "２"], "--nproc ２"),
        (["--out", "x.txt"], "x.txt"), (["--out", ""], "''"), (["--out", "/nonexistent-dir/p.json"], "/nonexistent-dir"),
        (["--out", "/proc/p.json"], "/proc/p.json"), (["--out", f"{D}/adir.json"], "adir.json"),
        (["--out", "/etc/passwd/x.json"], "/etc/passwd"), (["--out", "p.json\n"], "'p.json\\n'"),
        (["--report", "x.txt"], "x.txt"), (["--report", ""], "''"), (["--report", "/nonexistent/r.html"], "/nonexistent"),
        (["--report", "/proc/r.html"], "/proc/r.html"), (["--report", f"{D}/adir.html"], "adir.html"),
        (["--report", "r.html\n"], "'r.html\\n'"),
        (["--dtype", "fp8"], "--dtype fp8"), (["--dtype", "int4"], "--dtype int4"), (["--dtype", ""], "--dtype ''"),
        (["--dtype", "BF16"], "--dtype BF16"), (["--dtype", "tf32", "--device", "cpu"], "--dtype tf32"),
        (["--dtype", "fp32\n"], "'fp32\\n'"),
        (["--threads", "0"], "--threads 0"), (["--threads", "-1"], "--threads -1"), (["--threads", "many"], "--threads many"),
        (["--threads", "1e3"], "--threads 1e3"), (["--threads", str(cores() + 1)], f"--threads {cores() + 1}"),
        (["--threads", "nan"], "--threads nan"), (["--threads", ""], "--threads ''"),
        (["--device", "tpu"], "--device tpu"), (["--device", ""], "--device ''"), (["--device", "CPU"], "--device CPU"),
        (["--link", "warp"], "--link warp"), (["--link", ""], "--link ''"), (["--link", "PCIE4"], "--link PCIE4"),
        (["--link", "../links/shm"], "../links/shm"), (["--link", "shm\n"], "'shm\\n'"),
        (["--gpu-id", "gtx9999"], "--gpu-id gtx9999"), (["--gpu-id", ""], "--gpu-id ''"),
        (["--gpu-id", "../gpus/l40"], "../gpus/l40"), (["--gpu-id", "L40"], "--gpu-id L40"),
        (["--gpu-id", "l40", "--device", "cpu"], "--gpu-id l40"),
        (["--out", f"{D}/ok.json", "--nproc", "0"], "--nproc 0"), (["--out", f"{D}/ok.json", "--report", "r.txt"], "r.txt"),
        (["--unknown"], "--unknown"), (["--quick=1"], "--quick=1"), (["--nproc"], "--nproc"), (["extra"], "extra"),
        (["--out"], "--out"), (["--json=x"], "--json=x"), (["--report"], "--report"), (["--link"], "--link"),
        (["--threads"], "--threads"), (["--dtype"], "--dtype"),
        # profile --model: the model's own blocks
        (["--model", "no-such-model", "--out", f"{D}/ok.json"], "no-such-model"),
        (["--model", "opensora-1.2", "--out", f"{D}/ok.json"], "opensora-1.2"),
        (["--model", "", "--out", f"{D}/ok.json"], "--model ''"), (["--model"], "--model"),
        (["--model", "SD3-medium", "--out", f"{D}/ok.json"], "SD3-medium"),
        (["--model", "sd3-medium", "--scale", "huge"], "--scale huge"), (["--model", "sd3-medium", "--scale"], "--scale"),
        (["--model", "sd3-medium", "--scale", ""], "--scale ''"), (["--scale", "tiny"], "--scale"),
        (["--height", "512"], "--height"), (["--weights", f"{D}/weights-empty"], "--weights"),
        (["--model", "sd3-medium", "--weights", "/nonexistent", "--out", f"{D}/ok.json"], "/nonexistent"),
        (["--model", "sd3-medium", "--weights", f"{D}/weights-empty", "--out", f"{D}/ok.json"], "model_index.json"),
        (["--model", "sd3-medium", "--weights", f"{D}/weights-partial", "--out", f"{D}/ok.json"], "'transformer'"),
        (["--model", "sd3-medium", "--weights", f"{D}/weights-partial", "--scale", "tiny", "--out", f"{D}/ok.json"],
         "--scale tiny"),
        (["--model", "sd3-medium", "--height", "0", "--out", f"{D}/ok.json"], "--height 0"),
        (["--model", "sd3-medium", "--height", "nan", "--out", f"{D}/ok.json"], "--height nan"),
        (["--model", "sd3-medium", "--height", "100", "--scale", "tiny", "--out", f"{D}/ok.json"], "height=100"),
        (["--model", "sd3-medium", "--width", "1e9", "--out", f"{D}/ok.json"], "--width 1e9"),
        (["--model", "sd3-medium", "--frames", "-1", "--out", f"{D}/ok.json"], "--frames -1"),
        (["--model", "sd3-medium", "--batch", "0", "--out", f"{D}/ok.json"], "--batch 0"),
        (["--model", "sd3-medium", "--text-tokens", "inf", "--out", f"{D}/ok.json"], "--text-tokens inf"),
        (["--model", "sdxl", "--height", "72", "--scale", "tiny", "--out", f"{D}/ok.json"], "72x128"),
        (["--model", "sd3-medium", "--scale", "full", "--height", "16384", "--width", "16384", "--out", f"{D}/ok.json"],
         "GB"),
        (["--model", "sd3-medium", "--out", f"{D}/l40-profile.json"], "l40-profile.json"),
        (["--model", "sd3-medium", "--dtype", "bf16", "--out", f"{D}/cpu-profile.json"], "fp32"),
        (["--model", "sd3-medium", "--out", f"{D}/emax-profile.json"], "1000000"),
        (["--model", "sd3-medium", "--out", f"{D}/notjson.json"], "notjson.json"),
        (["--model", "sd3-medium", "--device", "tpu"], "--device tpu"),
    ],
    "validate": [
        ([], "--data"), (["--data", "/nonexistent.csv"], "/nonexistent.csv"), (["--data", ""], "''"),
        (["--data", f"{D}/adir.csv"], "adir.csv"), (["--data", f"{D}/binary.json"], "binary.json"),
        (["--data", f"{D}/empty.csv"], "empty.csv"), (["--data", f"{D}/blank.csv"], "blank.csv"),
        (["--data", f"{D}/header.csv"], "no rows"), (["--data", f"{D}/nocol.csv"], "missing column"),
        (["--data", f"{D}/short.csv"], "5 fields"), (["--data", f"{D}/long.csv"], "19 fields"),
        (["--data", f"{D}/nan.csv"], "latency_s nan must"), (["--data", f"{D}/inf.csv"], "latency_s inf must"),
        (["--data", f"{D}/neg.csv"], "latency_s -1 must"), (["--data", f"{D}/zero.csv"], "latency_s 0 must"), (["--data", f"{D}/abc.csv"], "latency_s abc must"),
        (["--data", f"{D}/blanklat.csv"], "''"), (["--data", f"{D}/big.csv"], "1e400"),
        (["--data", f"{D}/comma.csv"], "1,5"), (["--data", f"{D}/arabic.csv"], "٣"), (["--data", f"{D}/hex.csv"], "0x10"),
        (["--data", f"{D}/under.csv"], "1_000"), (["--data", f"{D}/pinf.csv"], "+inf"),
        (["--data", f"{D}/infinity.csv"], "Infinity"), (["--data", f"{D}/huge.csv"], "1e7"), (["--data", f"{D}/tiny.csv"], "1E-310"),
        (["--data", f"{D}/oomlat.csv"], "OOM"), (["--data", f"{D}/newline.csv"], "'1\\n5'"),
        (["--data", f"{D}/quote.csv"], "fields"), (["--data", f"{D}/nul.csv"], "'s\\x00rc'"),
        (["--data", f"{D}/field.csv"], "field.csv"), (["--data", f"{D}/bom16.csv"], "bom16.csv"),
        (["--data", f"{D}/latin1.csv"], "latin1.csv"), (["--data", f"{D}/tabs.csv"], "missing column"),
        (["--data", f"{D}/json.csv"], "missing column"), (["--data", f"{D}/oom-good.csv"], "OOM"),
        (["--oom", "/nonexistent.csv"], "/nonexistent.csv"), (["--oom", f"{D}/oom-header.csv"], "no rows"),
        (["--oom", f"{D}/good.csv"], "latency_s 1.5 must"), (["--oom", f"{D}/oom-short.csv"], "3 fields"),
        (["--oom", f"{D}/oom-nan.csv"], "latency_s nan must"), (["--oom", ""], "''"),
        (["--data", f"{D}/good.csv", "--report", "x.txt"], "x.txt"),
        (["--data", f"{D}/good.csv", "--report", ""], "''"),
        (["--data", f"{D}/good.csv", "--report", "/nonexistent/r.html"], "/nonexistent"),
        (["--data", f"{D}/good.csv", "--report", "/proc/r.html"], "/proc/r.html"),
        (["--data", f"{D}/good.csv", "--report", f"{D}/adir.html"], "adir.html"),
        (["--data", f"{D}/nan.csv", "--report", f"{D}/ok.html"], "latency_s nan"),
        (["--data", f"{D}/good.csv", "--hw-profile", "/nonexistent.json"], "/nonexistent.json"),
        (["--data", f"{D}/good.csv", "--hw-profile", ""], "--hw-profile ''"),
        (["--data", f"{D}/good.csv", "--hw-profile", f"{D}/notjson.json"], "notjson.json"),
        (["--data", f"{D}/good.csv", "--hw-profile", f"{D}/format-profile.json"], "'cluster'"),
        (["--data", f"{D}/good.csv", "--hw-profile", f"{D}/emax-profile.json"], "1000000"),
        (["--data", f"{D}/good.csv", "--hw-profile", f"{D}/eff-profile.json"], "2.4"),
        (["--data", f"{D}/good.csv", "--hw-profile", f"{D}/gtx-profile.json"], "gtx9999"),
        (["--data", f"{D}/good.csv", "--uncalibrated", "--hw-profile", f"{D}/cpu-profile.json"], "--uncalibrated"),
        (["--unknown"], "--unknown"), (["extra"], "extra"), (["--data"], "--data"), (["--json=1"], "--json=1"),
        (["--oom"], "--oom"), (["--report"], "--report"),
    ],
    "report": [
        (["html", f"{D}/plan.json"], "html"), (["", f"{D}/plan.json"], "''"), (["PLAN", f"{D}/plan.json"], "PLAN"),
        (["plan ", f"{D}/plan.json"], "'plan '"),
        (["plan", "/nonexistent.json"], "/nonexistent.json"), (["plan", ""], "''"),
        (["plan", f"{D}/adir.json", "--out", f"{D}/x.html"], "adir.json"), (["plan", f"{D}/notjson.json"], "notjson.json"),
        (["plan", f"{D}/nan.json"], "NaN"), (["plan", f"{D}/empty.json"], "empty.json"), (["plan", f"{D}/deep.json"], "deep.json"),
        (["plan", f"{D}/binary.json"], "binary.json"), (["plan", f"{D}/list.json"], "list.json"),
        (["plan", f"{D}/string.json"], "string.json"), (["plan", f"{D}/number.json"], "number.json"),
        (["plan", f"{D}/cluster.json"], "cluster.json"), (["plan", f"{D}/cpu-profile.json"], "cpu-profile.json"),
        *[(["plan", f"{D}/plan-bad{i}.json"], f"plan-bad{i}.json") for i in range(7)],
        *[(["plan", f"{D}/plan-drop{i}.json"], f"plan-drop{i}.json") for i in range(2)],
        (["run", f"{D}/plan.json"], "plan.json"), (["run", f"{D}/cluster.json"], "cluster.json"),
        (["run", f"{D}/list.json"], "list.json"), (["run", f"{D}/string.json"], "string.json"),
        (["run", f"{D}/empty.json"], "empty.json"), (["run", f"{D}/cpu-profile.json"], "cpu-profile.json"),
        (["validate", f"{D}/plan.json"], "plan.json"), (["validate", f"{D}/cluster.json"], "cluster.json"),
        (["validate", f"{D}/list.json"], "list.json"), (["validate", f"{D}/number.json"], "number.json"),
        (["validate", f"{D}/notjson.json"], "notjson.json"), (["validate", f"{D}/cpu-profile.json"], "cpu-profile.json"),
        (["profile", f"{D}/plan.json"], "plan.json"), (["profile", f"{D}/emax-profile.json"], "1000000"),
        (["profile", f"{D}/eff-profile.json"], "2.4"), (["profile", f"{D}/gtx-profile.json"], "gtx9999"),
        (["profile", f"{D}/format-profile.json"], "'cluster'"), (["profile", f"{D}/cluster.json"], "cluster.json"),
        (["profile", f"{D}/list.json"], "list.json"), (["profile", f"{D}/nan.json"], "NaN"),
        (["plan", f"{D}/plan.json", "--out", "x.txt"], "x.txt"), (["plan", f"{D}/plan.json", "--out", ""], "''"),
        (["plan", f"{D}/plan.json", "--out", "/nonexistent/x.html"], "/nonexistent"),
        (["plan", f"{D}/plan.json", "--out", "/proc/x.html"], "/proc/x.html"),
        (["plan", f"{D}/plan.json", "--out", f"{D}/adir.html"], "adir.html"),
        (["plan", f"{D}/plan.json", "--out", f"{D}/plan.json"], "plan.json"),
        (["plan", f"{D}/plan-bad0.json", "--out", f"{D}/ok.html"], "plan-bad0.json"),
        (["plan", f"{D}/plan.json", "--out", "x.html\n"], "'x.html\\n'"),
        ([], "kind"), (["plan"], "input"), (["--unknown", "plan", f"{D}/plan.json"], "--unknown"),
        (["plan", f"{D}/plan.json", "extra"], "extra"), (["plan", f"{D}/plan.json", "--out"], "--out"),
        (["plan", f"{D}/plan.json", "--json"], "--json"), (["run", ""], "''"), (["validate", ""], "''"),
        (["profile", ""], "''"), (["profile", "/nonexistent.json"], "/nonexistent.json"),
    ],
    "models": [(["--json=1"], "--json=1"), (["--unknown"], "--unknown"), (["extra"], "extra"), (["--top", "3"], "--top")],
    "gpus": [(["--json=1"], "--json=1"), (["--unknown"], "--unknown"), (["extra"], "extra"), (["--gpu", "l40"], "--gpu")],
}
MIN_KINDS = {"plan": 60, "run": 60, "profile": 60, "validate": 60, "report": 60, "models": 4, "gpus": 4}
README_LINE = re.compile(r"^\| `(\w+)` \| (\d+) \|", re.M)


@pytest.fixture(scope="module")
def d(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("bad-input")
    _files(path)
    return path


def _listing(*dirs: Path) -> set[str]:
    return {str(p) for d in dirs for p in d.rglob("*")}


CASE_IDS = [(cmd, i) for cmd, cases in CASES.items() for i in range(len(cases))]


@pytest.mark.parametrize("cmd, i", CASE_IDS, ids=[f"{c}-{i}-{' '.join(CASES[c][i][0])[:40]}" for c, i in CASE_IDS])
def test_bad_input(d, cmd, i):
    args, needle = CASES[cmd][i]
    args = [a.replace(D, str(d)) for a in args]
    needle = needle.replace(D, str(d))
    before = _listing(d, ROOT / "hw_profiles")
    cwd = os.getcwd()
    os.chdir(d)                  # relative outputs ("x.txt") would land here
    try:
        r = run_cli(cmd, *args)
    finally:
        os.chdir(cwd)
    assert "Traceback" not in r.err, r.err
    assert r.code == 2, (r.code, r.out[-500:], r.err)
    assert len(r.lines) == 1 and r.lines[0].startswith("error: "), r.err
    assert needle in r.lines[0], (needle, r.lines[0])
    assert HINT.search(r.lines[0]), r.lines[0]
    assert r.out == ""
    assert _listing(d, ROOT / "hw_profiles") == before, "a file was left behind"


def test_every_command_has_its_kinds():
    """At least MIN_KINDS kinds per command, and README's reliability table says how many."""
    for cmd, n in MIN_KINDS.items():
        assert len(CASES[cmd]) >= n, (cmd, len(CASES[cmd]))
    readme = dict((c, int(k)) for c, k in README_LINE.findall((ROOT / "README.md").read_text()))
    assert readme == {c: len(v) for c, v in CASES.items()}, readme
