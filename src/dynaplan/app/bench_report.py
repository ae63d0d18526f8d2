"""`dynaplan bench`'s figures as a table a person reads, and as JSON."""

from __future__ import annotations

import json
from pathlib import Path

from dynaplan.safe_files import write_text


def format_table(report: dict) -> str:
    kernel = report.get("rollout_kernel", "torch")
    lines = [f"dynaplan bench: torch {report['torch']}, {report['threads']} threads, "
             f"{report['device']}, {report['date']}"
             + (", CUDA graphs" if report.get("cuda_graph") else "")
             + (", TF32 matmuls" if report.get("tf32") else "")
             + (f", rollout kernel {kernel}" if kernel != "torch" else ""),
             f"square matmul: {report['square_matmul_gflops']:.1f} GFLOP/s (median); "
             "both rates of each row timed between its plan calls",
             "| setting | ms p50 | ms p99 | GFLOP/call | square GFLOP/s | layer GFLOP/s | "
             "floor ms | ratio to floor | seed ms p50 | speedup vs seed |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in report["settings"]:
        seed = (f"{r['seed_ms_p50']:.1f} | {r['speedup_vs_seed']:.1f}x"
                if "seed_ms_p50" in r else "- | -")
        lines.append(f"| {r['setting']} | {r['ms_p50']:.2f} | {r['ms_p99']:.2f} | "
                     f"{r['gflop_per_call']:.3f} | {r['square_gflops']:.1f} | "
                     f"{r['layer_gflops']:.1f} | "
                     f"{r['floor_ms']:.2f} | {r['ratio_to_floor']:.2f} | {seed} |")
    for r in report["settings"]:
        if "eager_ms_p50" in r:
            lines.append(f"{r['setting']}: without the CUDA graph {r['eager_ms_p50']:.2f} ms "
                         f"p50, so the graph is {r['speedup_vs_eager']:.1f}x faster")
        if "torch_ms_p50" in r:
            lines.append(f"{r['setting']}: through torch ops {r['torch_ms_p50']:.2f} ms p50 "
                         f"(timed beside it), so the {r['rollout_kernel']} kernel is "
                         f"{r['speedup_vs_torch']:.2f}x faster")
    fit = report["fit"]
    lines.append(f"MPC loop (setting a): {report['mpc_steps_per_s']:.1f} env steps/s")
    lines.append(f"fit: {fit['s_per_epoch']:.3f} s/epoch on {fit['transitions']} transitions, "
                 f"floor {fit['floor_s']:.3f} s, ratio {fit['ratio_to_floor']:.2f} (square "
                 f"{fit['square_gflops']:.1f}, layer {fit['layer_gflops']:.1f} GFLOP/s "
                 "between the fits)")
    return "\n".join(lines)


def write_json(report: dict, path: Path) -> None:
    write_text(path, json.dumps(report, indent=2) + "\n", path.parent)
