"""Where a GPU plan call's time goes, for settings a, c and d of `dynaplan bench`.

1. The kernels of plain (eager) plan calls, from torch.profiler: kernels per call and per
   planning step (optimizer iterations x horizon), their summed device time per call,
   and that time by kind of kernel (matmuls, activations, copies, the rest).
2. Plan calls through CUDA graphs, interleaved call by call: with one network's layers in
   the cuBLASLt-epilogue form (FusedMLPs.epilogue, on by default on a GPU) and without
   (setting c: one network; a plans through two, which keep the batched form).

A graph replay launches the same kernels without Python in between, so (graph time per
call) - (summed kernel time) is what the gaps between kernels cost.

    python benchmarks/cuda_profile.py [--calls 200] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

from dynaplan.agent import MPCAgent
from dynaplan.app import bench_setup
from dynaplan.app.matmul_floor import time_interleaved

KINDS = (("matmul", ("gemm", "xmma", "cutlass", "sm90", "sm80", "splitk", "cublas")),
         ("activation", ("silu", "relu", "clamp_min", "threshold")),
         ("copy", ("copy", "cat")),
         ("random", ("normal", "philox", "uniform", "random")),
         ("sort/topk", ("sort", "topk", "radix", "gather")),
         ("reduce", ("reduce",)))


def kind(name: str) -> str:
    low = name.lower()
    return next((k for k, words in KINDS if any(w in low for w in words)), "other")


def agent_for(setting, buf, device, cuda_graph: bool):
    _, rew, planned = bench_setup.setting_models(setting, buf, device)
    planner = bench_setup.build(setting, planned, rew, device, False, cuda_graph)
    return MPCAgent(planner, device), planner


def kernel_census(setting, buf, device, calls: int = 3) -> dict:
    agent, _ = agent_for(setting, buf, device, cuda_graph=False)
    obs = buf.obs[0]
    for _ in range(5):
        agent.act(obs)
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(calls):
            agent.act(obs)
        torch.cuda.synchronize()
    count, us = defaultdict(int), defaultdict(float)
    names = []
    for avg in prof.key_averages():
        if avg.device_type != torch.autograd.DeviceType.CUDA:
            continue
        t = getattr(avg, "self_device_time_total", None)
        t = avg.self_cuda_time_total if t is None else t
        count[kind(avg.key)] += avg.count
        us[kind(avg.key)] += t
        names.append((t / calls, avg.count / calls, avg.key[:90]))
    if not names:  # this torch marks its kernel events otherwise: show them as they are
        print(prof.key_averages().table(row_limit=25))
        return {"setting": setting.name}
    steps = setting.iterations * setting.horizon
    total_us = sum(us.values()) / calls
    kernels = sum(count.values()) / calls
    top = sorted(names, reverse=True)[:8]
    print(f"{setting.name}: {kernels:.0f} kernels a call ({kernels / steps:.1f} a planning "
          f"step), {total_us / 1e3:.2f} ms of kernel time a call")
    for k in us:
        print(f"    {k:10s} {count[k] / calls:7.0f} kernels {us[k] / calls / 1e3:7.3f} ms")
    for t, c, name in top:
        print(f"    top: {t / 1e3:7.3f} ms {c:6.0f}x {name}")
    return {"setting": setting.name, "kernels_per_call": kernels,
            "kernels_per_step": kernels / steps, "kernel_ms_per_call": total_us / 1e3,
            "by_kind_ms": {k: v / calls / 1e3 for k, v in us.items()},
            "by_kind_kernels": {k: v / calls for k, v in count.items()},
            "top": [{"ms": t / 1e3, "count": c, "name": n} for t, c, n in top]}


def epilogue_ab(setting, buf, device, calls: int) -> dict:
    """Graph-replayed plan calls with the epilogue form on and off, interleaved."""
    agents = {}
    for on in (True, False):
        agent, planner = agent_for(setting, buf, device, cuda_graph=True)
        planner.objective.refresh()
        net = planner.objective.rollout._dyn_net  # the fused torch rollout's FusedMLPs
        net.epilogue = on and net.k == 1
        agents["epilogue" if on else "batched"] = agent
    obs = buf.obs[0]
    fns = {k: (lambda a=a: a.act(obs)) for k, a in agents.items()}
    time_interleaved(fns, 10)
    ms = {k: 1e3 * float(np.median(v)) for k, v in time_interleaved(fns, calls).items()}
    print(f"{setting.name} through CUDA graphs: epilogue form {ms['epilogue']:.2f} ms, "
          f"batched form {ms['batched']:.2f} ms a call (ratio "
          f"{ms['epilogue'] / ms['batched']:.2f})")
    return {"setting": setting.name, "ms_p50": ms}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    device = torch.device("cuda")
    buf = bench_setup.random_data(2000)
    by_name = {s.name: s for s in bench_setup.SETTINGS}
    report = {"device": torch.cuda.get_device_name(), "torch": torch.__version__,
              "census": [kernel_census(by_name[n], buf, device)
                         for n in ("a_seed_cem", "c_pets_sized", "d_pets_paper")],
              "epilogue_ab": [epilogue_ab(by_name["c_pets_sized"], buf, device, args.calls)]}
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
