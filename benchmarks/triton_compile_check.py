"""Compile the Triton rollout kernel for NVIDIA GPUs on a machine without one, and report
what the compiler made of it: registers per thread, spills to local memory, shared memory,
and whether the products run on tensor cores (mma instructions in the PTX).

The shapes are those of `dynaplan bench` settings a (the seed's 512-256 network, padded
to 512), c (4 x 200 SiLU, padded to a multiple of the tile) and d (c's network as a
5-member ensemble, TS-inf with sampling), for each tile configuration of
triton_rollout_ab.py, in float32 ("ieee") and TF32. Triton compiles to
PTX in-process and assembles with the ptxas it ships, so no GPU and no CUDA toolkit are
needed; timings need a GPU (triton_rollout_ab.py).

    python benchmarks/triton_compile_check.py [--arch 80 90] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

sys.path.insert(0, str(Path(__file__).parent))
from triton_rollout_ab import CONFIGS  # noqa: E402

from dynaplan.accel import triton_kernel  # noqa: E402
from dynaplan.accel.fused import FusedMLPs  # noqa: E402
from dynaplan.accel.fused_ensemble import FusedEnsemble  # noqa: E402
from dynaplan.accel.triton_rollout import TritonRollout  # noqa: E402
from dynaplan.app import bench_setup  # noqa: E402

POINTERS = ("state0", "actions", "noise", "traj", "w_in", "b_in", "w_hid", "b_hid", "w_out",
            "b_out", "w_var", "b_var", "var_max", "var_span", "var_offset", "scratch")


def resources(cubin: bytes) -> dict:
    """REG, STACK, LOCAL, SHARED of the kernel, from cuobjdump -res-usage."""
    tool = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        out = subprocess.run([str(tool), "-res-usage", f.name], capture_output=True,
                             text=True, check=True).stdout
    line = next(x for x in out.splitlines() if "REG:" in x)
    return {k.lower(): int(v) for k, v in re.findall(r"(REG|STACK|LOCAL|SHARED):(\d+)", line)}


def compile_kernel(rollout: TritonRollout, arch: int) -> dict:
    fn = triton_kernel.rollout_kernel
    consts = rollout.constexprs()
    signature = {**{n: "*fp32" for n in POINTERS}, "R": "i32", "H": "i32",
                 **{k: "constexpr" for k in consts}}
    src = ASTSource(fn=fn, signature=signature,
                    constexprs={(fn.arg_names.index(k),): v for k, v in consts.items()})
    kernel = triton.compile(src, target=GPUTarget("cuda", arch, 32),
                            options={"num_warps": rollout.num_warps})
    ptx = kernel.asm["ptx"]
    return {**resources(kernel.asm["cubin"]), "dynamic_shared": kernel.metadata.shared,
            "mma": ptx.count("mma.sync"),
            "ptx_lines": ptx.count("\n")}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", type=int, nargs="+", default=[80, 90],
                   help="compute capabilities: 80 (A100), 90 (H100, H200)")
    p.add_argument("--json", metavar="FILE")
    args = p.parse_args(argv)
    import torch

    buf = bench_setup.random_data(2000)
    rows = []
    for name in ("a_seed_cem", "c_pets_sized", "d_pets_paper"):
        setting = bench_setup.setting_named(name)
        _, _, planned = bench_setup.setting_models(setting, buf, torch.device("cpu"))
        if setting.members:
            net, sample = FusedEnsemble(planned.ensemble, split=1), planned.sample
        else:
            net, sample = FusedMLPs([planned]), False
        for block, block_m, warps in CONFIGS:
            for tf32 in (False, True):
                rollout = TritonRollout(net, buf.obs_dim, tf32=tf32, block=block,
                                        block_m=block_m, num_warps=warps, sample=sample)
                for arch in args.arch:
                    row = {"setting": name, "sm": arch, "block": block, "block_m": block_m,
                           "num_warps": warps, "precision": rollout.precision,
                           "padded_width": rollout.p, **compile_kernel(rollout, arch)}
                    rows.append(row)
                    print(f"{name:13s} sm{arch} b{block:<3d} m{block_m:<2d} w{warps} "
                          f"{rollout.precision:4s} P={rollout.p}: {row['reg']} regs, "
                          f"stack {row['stack']}, local {row['local']}, shared "
                          f"{row['shared']} + {row['dynamic_shared']}, {row['mma']} mma",
                          flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"triton": triton.__version__, "kernels": rows},
                                              indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
