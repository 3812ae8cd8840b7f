"""Time a full training step of every mtl_core method, as a ratio to LS on the same model and batch.

Usage: python benchmarks/step_time.py [--device cpu|cuda] [--ks 2 3 11 40] [--repeats 5] [--out FILE]

Measures, for each K:
* step time of every weighting (one backward) and every aggregator on the exact Jacobian of the shared
  parameters (``exact+<agg>``) and, for a few, on the features Jacobian (``features+<agg>``), over LS, each
  a full ``mtl_core.MTLStep`` step (the step the pipeline and users run);
* the aggregator's own arithmetic (``agg(J, losses)`` alone) as a share of its step;
* batched vs looped Jacobian: time (forward + Jacobian) and peak memory (RSS on CPU measured in a fresh
  subprocess per configuration; ``max_memory_allocated`` on CUDA).
"""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import BenchModel, Problem, machine, sync, time_fn, time_interleaved, warm_up_process, write_json
from common import parser as common_parser

import mtl_core
from mtl_core import aggregators, weightings

FEATURE_METHODS = ("mgda", "aligned_mtl", "pcgrad", "nash_mtl")


def method_step(p: Problem, method: str, jacobian_mode: str = "auto"):
    """One training step of ``method`` through ``mtl_core.MTLStep``, the step users run (forward, per-task
    gradients or one weighted backward, combination, heads, optimiser; FAMO's after-step hook included)."""
    model = BenchModel(p)
    step = mtl_core.MTLStep(model, method, torch.optim.SGD(model.parameters(), lr=1e-3), jacobian_mode=jacobian_mode)
    return lambda: step.step(BenchModel.closure)


def arithmetic_time(p: Problem, agg: aggregators.Aggregator, repeats: int) -> float:
    _, losses = p.forward()
    j = mtl_core.jacobian(losses, p.shared_parameters())
    losses = losses.detach()
    return time_fn(lambda: agg(j, losses), p.device, repeats)


def jacobian_peak(k: int, mode: str, device: str, through: bool) -> float:
    """Peak extra memory (MiB) of forward + Jacobian, in a fresh process."""
    here = str(Path(__file__).parent)
    code = (
        f"import sys, resource, torch; sys.path.insert(0, {here!r}); from common import Problem; import mtl_core\n"
        f"p = Problem({k}, {device!r})\n"
        "dev = p.device\n"
        "if dev.type == 'cuda':\n"
        "    torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats(); base = torch.cuda.memory_allocated()\n"
        "else:\n"
        "    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024\n"
        "z, losses = p.forward_list()\n"
        f"j = mtl_core.jacobian(losses, p.shared_parameters(), mode={mode!r}, through=z if {through} else None)\n"
        "if dev.type == 'cuda':\n"
        "    torch.cuda.synchronize(); peak = torch.cuda.max_memory_allocated() - base\n"
        "else:\n"
        "    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base\n"
        "print(peak / 2**20)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def run(
    ks: list[int], device: str, repeats: int, peak: bool, only: list[str] | None = None, steps_only: bool = False
) -> dict:
    results: dict = {"machine": machine(), "device": device, "repeats": repeats, "timing": "interleaved", "ks": {}}
    warm_up_process(device)
    for k in ks:
        p = Problem(k, device)
        row: dict = {"n_shared": sum(x.numel() for x in p.shared_parameters())}
        methods = [
            *weightings.names(),
            *(f"exact+{name}" for name in aggregators.names()),
            *(f"features+{name}" for name in FEATURE_METHODS),
        ]
        if only:  # a subset (LS always: it is the denominator)
            unknown = sorted(set(only) - set(methods))
            if unknown:
                raise SystemExit(f"unknown method(s) {unknown}; valid: {methods}")
            methods = ["ls", *(m for m in methods if m in only and m != "ls")]
        # every method once per round (time_interleaved): the VM's drift falls on all ratios alike
        steps = time_interleaved({m: method_step(p, m) for m in methods}, p.device, repeats)
        ls = steps["ls"]
        row["ls_seconds"] = ls
        row["ratio_to_ls"] = {m: t / ls for m, t in steps.items()}
        if steps_only:
            results["ks"][str(k)] = row
            print(f"K={k}: LS {ls * 1e3:.1f} ms", flush=True)
            continue
        row["arithmetic_share"] = {
            name: arithmetic_time(p, aggregators.create(name, k).to(p.device), repeats) / steps[f"exact+{name}"]
            for name in aggregators.names()
            if f"exact+{name}" in steps
        }
        jac = {}
        for mode in ("loop", "batched"):
            for through in (False, True):

                def fwd_jac(mode: str = mode, through: bool = through, p: Problem = p) -> None:
                    z, loss_list = p.forward_list()
                    mtl_core.jacobian(loss_list, p.shared_parameters(), mode=mode, through=z if through else None)

                key = f"{mode}+through_z" if through else mode
                jac[key] = {"seconds": time_fn(fwd_jac, p.device, repeats)}
                if peak:
                    jac[key]["peak_mib"] = jacobian_peak(k, mode, device, through)
        row["jacobian"] = jac
        row["auto_mode"] = mtl_core.choose_mode(p.device, k, through=True)
        results["ks"][str(k)] = row
        sync(p.device)
        timings = ", ".join(f"{m} {v['seconds'] * 1e3:.1f} ms" for m, v in jac.items())
        print(f"K={k}: LS {ls * 1e3:.1f} ms; {timings}", flush=True)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = common_parser(__doc__, "step_time.json")
    parser.add_argument("--no-peak", action="store_true", help="skip the subprocess peak-memory runs")
    parser.add_argument("--methods", nargs="+", default=None, help="time only these methods (and LS)")
    parser.add_argument(
        "--steps-only", action="store_true", help="skip the Jacobian-engine table and arithmetic shares"
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    results = run(args.ks, args.device, args.repeats, not args.no_peak, args.methods, args.steps_only)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write_json(args.out, results)
    print(f"wrote {args.out} (max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB)")


if __name__ == "__main__":
    main()
