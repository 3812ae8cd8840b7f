"""Time the SAM-family estimators against the exact estimator and check each against its cost model.

Usage: python benchmarks/sam_family.py [--device cpu|cuda] [--ks 2 3 11 40] [--repeats 5] [--threads 2] [--out F]

On the benchmark problem of ``common.py`` (conv encoder, K conv heads, batch 32 x 3 x 32 x 32), for each K:

* unit costs, medians of timed repeats: ``C_f`` one forward of the model (encoder + K heads + losses) building
  the graph, ``C_f0`` the same without a graph (SPSA's forwards), ``C_b1`` one task's backward (its head and
  the encoder; the mean over the K tasks of a per-task loop), ``C_bsum`` one backward of the mean loss;
* the step time of ``exact``, ``sam``, ``lsam``, ``fmtl`` and ``samo`` with the LS combiner through
  ``mtl_core.MTLStep`` (the step users run), and the overhead of each over ``exact``;
* the overhead predicted by counting the passes each estimator makes (its docstring; seed 002 Table 3 adds
  the perturbed forwards the table leaves out):

  ===========  =========================================
  ``sam``      ``C_bsum + C_f``
  ``lsam``     ``K C_f + K C_b1``
  ``fmtl``     ``K C_f + K C_b1``
  ``samo``     ``C_bsum + 2K C_f0 + K C_f``
  ===========  =========================================

A measured overhead within 20% of its prediction means the step does nothing beyond those passes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import BenchModel, Head, Problem, machine, sync, time_fn, warm_up_process, write_json
from common import parser as common_parser

import mtl_core

# Default hyper-parameters: radii do not change the cost; with the LS combiner F-MTL's variants coincide.
ESTIMATORS = ("exact", "sam", "lsam", "fmtl", "samo")


def predicted_overhead(name: str, k: int, c: dict[str, float]) -> float:
    return {
        "exact": 0.0,
        "sam": c["C_bsum"] + c["C_f"],
        "lsam": k * c["C_f"] + k * c["C_b1"],
        "fmtl": k * c["C_f"] + k * c["C_b1"],
        "samo": c["C_bsum"] + 2 * k * c["C_f0"] + k * c["C_f"],
    }[name]


def unit_costs(p: Problem, repeats: int) -> dict[str, float]:
    def forward() -> list[torch.Tensor]:
        return p.forward_list()[1]

    def forward_no_graph() -> None:
        with torch.no_grad():
            forward()

    c_f = time_fn(forward, p.device, repeats)
    c_f0 = time_fn(forward_no_graph, p.device, repeats)
    shared = p.shared_parameters()

    def per_task_backward() -> None:
        losses = forward()
        for i, loss in enumerate(losses):
            heads = list(p.heads[i].parameters())
            torch.autograd.grad(loss, shared + heads, retain_graph=i < len(losses) - 1)

    def mean_backward() -> None:
        torch.stack(forward()).mean().backward()

    c_b1 = (time_fn(per_task_backward, p.device, repeats) - c_f) / p.k
    c_bsum = time_fn(mean_backward, p.device, repeats) - c_f
    # a single head's forward, to show what task-restricted forwards would cost
    head: Head = p.heads[0]
    with torch.no_grad():
        z = p.encoder(p.x)
    c_head0 = time_fn(lambda: head(z), p.device, repeats)
    return {"C_f": c_f, "C_f0": c_f0, "C_b1": c_b1, "C_bsum": c_bsum, "C_head0": c_head0}


def step_time(p: Problem, estimator: str, repeats: int) -> float:
    model = BenchModel(p)
    step = mtl_core.MTLStep(model, f"{estimator}+ls", torch.optim.SGD(model.parameters(), lr=1e-3))
    return time_fn(lambda: step.step(BenchModel.closure), p.device, repeats)


def run(ks: list[int], device: str, repeats: int) -> dict:
    results: dict = {"machine": machine(), "device": device, "repeats": repeats, "ks": {}}
    warm_up_process(device)
    for k in ks:
        p = Problem(k, device)
        costs = unit_costs(p, repeats)
        steps = {name: step_time(p, name, repeats) for name in ESTIMATORS}
        exact = steps["exact"]
        rows = {}
        for name in ESTIMATORS:
            measured = steps[name] - exact
            predicted = predicted_overhead(name, k, costs)
            rows[name] = {
                "step_seconds": steps[name],
                "ratio_to_exact": steps[name] / exact,
                "overhead_seconds": measured,
                "predicted_overhead_seconds": predicted,
                "overhead_vs_model": measured / predicted if predicted else None,
            }
        rows["samo"]["ratio_to_lsam"] = steps["samo"] / steps["lsam"]
        rows["samo"]["ratio_to_fmtl"] = steps["samo"] / steps["fmtl"]
        results["ks"][str(k)] = {"unit_costs": costs, "estimators": rows}
        sync(p.device)
        print(
            f"K={k}: "
            + ", ".join(f"{n} {r['ratio_to_exact']:.2f}x" for n, r in rows.items())
            + " | C_f {C_f:.4f} C_f0 {C_f0:.4f} C_b1 {C_b1:.4f} C_bsum {C_bsum:.4f} s".format(**costs),
            flush=True,
        )
    return results


def table(results: dict) -> str:
    """The Markdown tables of benchmarks/README.md."""
    lines = [
        "| K | C_f | C_f0 | C_b1 | C_bsum | C_b1 / C_f | one head (no graph) |",
        "|---|---|---|---|---|---|---|",
    ]
    for k, row in results["ks"].items():
        c = row["unit_costs"]
        lines.append(
            f"| {k} | {c['C_f'] * 1e3:.1f} | {c['C_f0'] * 1e3:.1f} | {c['C_b1'] * 1e3:.1f} | {c['C_bsum'] * 1e3:.1f} "
            f"| {c['C_b1'] / c['C_f']:.2f} | {c['C_head0'] * 1e3:.1f} |"
        )
    lines += [
        "",
        "| K | exact step (ms) | "
        + " | ".join(f"`{n}` x exact (measured / model overhead)" for n in ESTIMATORS[1:])
        + " | SAMO / L-SAM | SAMO / F-MTL |",
        "|---|---|" + "---|" * (len(ESTIMATORS) - 1) + "---|---|",
    ]
    for k, row in results["ks"].items():
        est = row["estimators"]
        cells = [f"{est[n]['ratio_to_exact']:.2f} ({est[n]['overhead_vs_model']:.2f})" for n in ESTIMATORS[1:]]
        lines.append(
            f"| {k} | {est['exact']['step_seconds'] * 1e3:.1f} | "
            + " | ".join(cells)
            + f" | {est['samo']['ratio_to_lsam']:.2f} | {est['samo']['ratio_to_fmtl']:.2f} |"
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
