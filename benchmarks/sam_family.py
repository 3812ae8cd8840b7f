"""Time the SAM-family estimators against the exact estimator and check each against its cost model.

Usage: python benchmarks/sam_family.py [--device cpu|cuda] [--ks 2 3 11 40] [--repeats 5] [--threads 2] [--out F]

On the benchmark problem of ``common.py`` (conv encoder, K conv heads, batch 32 x 3 x 32 x 32), for each K:

* unit costs, medians of timed repeats (in the same interleaved rounds as the steps): ``C_f`` one forward of
  the model (encoder + K heads + losses) building the graph, ``C_f0`` the same without a graph; ``C_f1`` /
  ``C_f1_0`` one task's forward (encoder + its head + its loss, what a task-restricted closure runs) with /
  without a graph; ``C_b1`` one task's backward (its head and the encoder; the mean over the K tasks of a
  per-task loop), ``C_bsum`` one backward of the mean loss (every head and the encoder once);
* the step time of ``exact``, ``sam``, ``lsam``, ``fmtl`` and ``samo`` with the LS combiner through
  ``mtl_core.MTLStep`` (the step users run), with the task-restricted closure (``BenchModel.closure``, as the
  pipelines' training loop) and, for the estimators that make per-task passes, also with a closure that always
  runs all K heads (``*_full``); all configurations of one K are timed in interleaved rounds;
* the overhead of each over ``exact+ls`` (one forward ``C_f`` and one backward ``C_bsum``: LS's weights are
  known, so the step back-propagates ``sum_i w_i L_i`` once), and the overhead predicted by counting the passes
  each estimator makes (tests/test_estimators.py::expected_cost counts them):

  =========  =============================================  ==========================================
  estimator  passes beyond exact+ls                         predicted overhead
  =========  =============================================  ==========================================
  ``sam``    g0 backward, perturbed forward (all tasks)     ``C_bsum + C_f``
  ``lsam``   K exact per-task backwards instead of one,     ``K C_b1 - C_bsum + K (C_f1 + C_b1)``
             then K perturbed forwards + backwards
  ``fmtl``   as ``lsam``                                    as ``lsam``
  ``samo``   (g0 backward = exact+ls's), 2K SPSA forwards,  ``2K C_f1_0 + K (C_f1 + C_b1)``
             K perturbed forwards + backwards
  =========  =============================================  ==========================================

  With the full closure ``C_f1`` becomes ``C_f`` and ``C_f1_0`` becomes ``C_f0``. Over a base method that
  already forms the K exact gradients (an aggregator: ``C_f + K C_b1``), F-MTL/L-SAM add ``K (C_f1 + C_b1)``
  and SAMO ``C_bsum + 2K C_f1_0 + K C_f1`` -- seed 002 Table 3's ``K C_b`` and ``C_b + 2K C_f`` plus the
  per-task perturbed forwards the table leaves out.

A measured overhead within 20% of its prediction means the step does nothing beyond those passes.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import BenchModel, Problem, machine, sync, time_interleaved, warm_up_process, write_json
from common import parser as common_parser

import mtl_core

# Default hyper-parameters: radii do not change the cost; with the LS combiner F-MTL's variants coincide.
ESTIMATORS = ("exact", "sam", "lsam", "fmtl", "samo")
PER_TASK = ("lsam", "fmtl", "samo")  # the estimators whose per-task passes a restricted closure shortens


def predicted_overhead(name: str, k: int, c: dict[str, float], *, restricted: bool = True) -> float:
    f1, f1_0 = (c["C_f1"], c["C_f1_0"]) if restricted else (c["C_f"], c["C_f0"])
    perturbed = k * (f1 + c["C_b1"])  # one forward + one backward of each task at its own perturbed point
    return {
        "exact": 0.0,
        "sam": c["C_bsum"] + c["C_f"],
        "lsam": k * c["C_b1"] - c["C_bsum"] + perturbed,
        "fmtl": k * c["C_b1"] - c["C_bsum"] + perturbed,
        "samo": 2 * k * f1_0 + perturbed,
    }[name]


def unit_cost_fns(p: Problem) -> dict[str, Callable[[], object]]:
    """The passes whose medians give the unit costs (see :func:`unit_costs`)."""

    def forward() -> list[torch.Tensor]:
        return p.forward_list()[1]

    def forward_no_graph() -> None:
        with torch.no_grad():
            forward()

    def forward_one() -> torch.Tensor:
        return torch.nn.functional.mse_loss(p.heads[0](p.encoder(p.x)), p.targets[0])

    def forward_one_no_graph() -> None:
        with torch.no_grad():
            forward_one()

    shared = p.shared_parameters()

    def per_task_backward() -> None:
        losses = forward()
        for i, loss in enumerate(losses):
            heads = list(p.heads[i].parameters())
            torch.autograd.grad(loss, shared + heads, retain_graph=i < len(losses) - 1)

    def mean_backward() -> None:
        torch.autograd.grad(torch.stack(forward()).mean(), [*shared, *p.head_parameters()])

    return {
        "C_f": forward,
        "C_f0": forward_no_graph,
        "C_f1": forward_one,
        "C_f1_0": forward_one_no_graph,
        "fwd+K bwd": per_task_backward,
        "fwd+bwd": mean_backward,
    }


def unit_costs(t: dict[str, float], k: int) -> dict[str, float]:
    """Unit costs from the medians of :func:`unit_cost_fns` (backwards: the pass minus its forward)."""
    return {
        "C_f": t["C_f"],
        "C_f0": t["C_f0"],
        "C_f1": t["C_f1"],
        "C_f1_0": t["C_f1_0"],
        "C_b1": (t["fwd+K bwd"] - t["C_f"]) / k,
        "C_bsum": t["fwd+bwd"] - t["C_f"],
    }


def step_fn(p: Problem, estimator: str, *, restricted: bool):
    model = BenchModel(p)
    step = mtl_core.MTLStep(model, f"{estimator}+ls", torch.optim.SGD(model.parameters(), lr=1e-3))
    closure = BenchModel.closure if restricted else BenchModel.full_closure
    return lambda: step.step(closure)


def run(ks: list[int], device: str, repeats: int) -> dict:
    results: dict = {"machine": machine(), "device": device, "repeats": repeats, "timing": "interleaved", "ks": {}}
    warm_up_process(device)
    for k in ks:
        p = Problem(k, device)
        passes = unit_cost_fns(p)
        configs = {name: step_fn(p, name, restricted=True) for name in ESTIMATORS}
        configs.update({f"{name}_full": step_fn(p, name, restricted=False) for name in PER_TASK})
        # unit costs and steps in the same interleaved rounds: the model and the measurement see one machine
        medians = time_interleaved({**passes, **configs}, p.device, repeats)
        costs = unit_costs(medians, k)
        steps = {name: medians[name] for name in configs}
        exact = steps["exact"]
        rows = {}
        for name, seconds in steps.items():
            base, restricted = name.removesuffix("_full"), not name.endswith("_full")
            measured = seconds - exact
            predicted = predicted_overhead(base, k, costs, restricted=restricted)
            rows[name] = {
                "closure": "task-restricted" if restricted else "all heads",
                "step_seconds": seconds,
                "ratio_to_exact": seconds / exact,
                "overhead_seconds": measured,
                "predicted_overhead_seconds": predicted,
                "overhead_vs_model": measured / predicted if predicted else None,
            }
        for suffix in ("", "_full"):
            rows[f"samo{suffix}"]["ratio_to_lsam"] = steps[f"samo{suffix}"] / steps[f"lsam{suffix}"]
            rows[f"samo{suffix}"]["ratio_to_fmtl"] = steps[f"samo{suffix}"] / steps[f"fmtl{suffix}"]
        results["ks"][str(k)] = {"unit_costs": costs, "estimators": rows}
        sync(p.device)
        print(
            f"K={k}: "
            + ", ".join(f"{n} {r['ratio_to_exact']:.2f}x ({r['overhead_vs_model'] or 0:.2f})" for n, r in rows.items())
            + " | "
            + " ".join(f"{n} {v * 1e3:.1f}" for n, v in costs.items())
            + " ms",
            flush=True,
        )
    return results


def table(results: dict) -> str:
    """The Markdown tables of benchmarks/README.md."""
    lines = [
        "| K | C_f | C_f0 | C_f1 | C_f1_0 | C_b1 | C_bsum | C_b1 / C_f1 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for k, row in results["ks"].items():
        c = {n: v * 1e3 for n, v in row["unit_costs"].items()}
        lines.append(
            f"| {k} | {c['C_f']:.1f} | {c['C_f0']:.1f} | {c['C_f1']:.1f} | {c['C_f1_0']:.1f} | {c['C_b1']:.1f} "
            f"| {c['C_bsum']:.1f} | {c['C_b1'] / c['C_f1']:.2f} |"
        )
    names = [*ESTIMATORS[1:], *(f"{n}_full" for n in PER_TASK)]
    lines += [
        "",
        "| K | exact step (ms) | "
        + " | ".join(f"`{n}`" for n in names)
        + " | SAMO / L-SAM | SAMO / F-MTL | (all heads) SAMO / F-MTL |",
        "|---|---|" + "---|" * len(names) + "---|---|---|",
    ]
    for k, row in results["ks"].items():
        est = row["estimators"]
        cells = [f"{est[n]['ratio_to_exact']:.2f} ({est[n]['overhead_vs_model']:.2f})" for n in names]
        lines.append(
            f"| {k} | {est['exact']['step_seconds'] * 1e3:.1f} | "
            + " | ".join(cells)
            + f" | {est['samo']['ratio_to_lsam']:.2f} | {est['samo']['ratio_to_fmtl']:.2f}"
            + f" | {est['samo_full']['ratio_to_fmtl']:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = common_parser(__doc__, "sam_family.json")
    parser.add_argument("--table", metavar="JSON", help="only print the Markdown tables of a results file")
    args = parser.parse_args(argv)
    if args.table:
        import json

        print(table(json.loads(Path(args.table).read_text())))
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    results = run(args.ks, args.device, args.repeats)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write_json(args.out, results)
    print(table(results))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
