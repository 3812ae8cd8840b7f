"""Render benchmark JSON results as Markdown tables (printed; pasted into benchmarks/README.md).

Usage: python benchmarks/report.py OURS.json [PEERS.json]
Ratios are to *our* LS step measured in the same run on the same machine; peers' absolute times are
divided by that LS time too, so every number in a row shares one denominator.
"""

from __future__ import annotations

import json
import sys


def fmt(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}"


def render(ours: dict, peers: dict | None) -> str:
    ks = list(ours["ks"])
    m = ours["machine"]
    lines = [
        f"Machine: {m.get('cpu')} ({m.get('threads')} torch threads), {m.get('gpu', 'no GPU')}; "
        f"torch {m['torch']}, Python {m['python']}; device `{ours['device']}`; median of {ours['repeats']} steps.",
    ]
    with_engines = [k for k in ks if "jacobian" in ours["ks"][k]]  # absent in a --steps-only run
    if with_engines:
        lines += [
            "",
            "Forward + Jacobian of the shared parameters, ms (peak extra memory, MiB):",
            "",
            "| K | n shared | LS step | loop | batched | loop, through z | batched, through z | auto |",
            "|---|---|---|---|---|---|---|---|",
        ]
    for k in with_engines:
        row = ours["ks"][k]
        jac = row["jacobian"]
        cells = [
            f"{jac[m]['seconds'] * 1e3:.1f} ({fmt(jac[m].get('peak_mib'))})"
            for m in ("loop", "batched", "loop+through_z", "batched+through_z")
        ]
        lines.append(
            f"| {k} | {row['n_shared']} | {row['ls_seconds'] * 1e3:.1f} | "
            + " | ".join(cells)
            + f" | {row['auto_mode']} |"
        )
    methods = list(ours["ks"][ks[0]]["ratio_to_ls"])
    header = "| method | " + " | ".join(f"K={k} ours / LibMTL / TorchJD" for k in ks) + " |"
    lines += [
        "",
        "Step time as a multiple of LS (ours / LibMTL 1.1.5 / TorchJD; — = not offered):",
        "",
        header,
        "|---|" + "---|" * len(ks),
    ]
    for method in methods:
        cells = []
        for k in ks:
            ls = ours["ks"][k]["ls_seconds"]
            mine = ours["ks"][k]["ratio_to_ls"].get(method)
            lib = tjd = None
            if peers and k in peers["ks"]:
                pk = peers["ks"][k]
                lib = pk["libmtl"].get(method)
                tjd = pk["torchjd"].get(method)
                lib = None if lib is None else lib / ls
                tjd = None if tjd is None else tjd / ls
            cells.append(f"{fmt(mine)} / {fmt(lib)} / {fmt(tjd)}")
        lines.append(f"| `{method}` | " + " | ".join(cells) + " |")
    shared_names = ours["ks"][ks[0]].get("arithmetic_share", {})
    if shared_names:
        lines += [
            "",
            "Aggregator arithmetic (excluding the Jacobian) as a share of its exact step:",
            "",
            "| aggregator | " + " | ".join(f"K={k}" for k in ks) + " |",
            "|---|" + "---|" * len(ks),
        ]
    for name in shared_names:
        shares = [ours["ks"][k]["arithmetic_share"][name] for k in ks]
        lines.append(f"| `{name}` | " + " | ".join(f"{100 * s:.1f}%" for s in shares) + " |")
    if peers:
        errors = {f"K={k} {name}": msg for k in peers["ks"] for name, msg in peers["ks"][k]["errors"].items()}
        if errors:
            lines += ["", "Peer runs that failed:", ""] + [f"- {key}: {msg}" for key, msg in errors.items()]
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    ours = json.load(open(sys.argv[1]))
    peers = json.load(open(sys.argv[2])) if len(sys.argv) > 2 else None
    print(render(ours, peers))


if __name__ == "__main__":
    main()
