"""Forward+backward time and peak memory of every model at its default and a small width, on CPU.

Each (model, width) runs in a fresh subprocess so that the process's peak resident set size
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``, a high-water mark) can be attributed to it:

- ``fwd+bwd wall s``: median wall-clock seconds of ``model(x)`` + backward of the summed task losses, after one
  warm-up iteration (which also pays oneDNN's one-off kernel compilation);
- ``peak extra MiB``: peak RSS after the warm-up iteration minus RSS before it, i.e. what one
  forward+backward adds on top of the model and its input (activations kept for backward, parameter
  gradients, convolution workspaces); the allocator may keep some freed memory, so this is an upper
  bound of the live tensors;
- ``CPU s``: median process CPU time of the same iteration, summed over threads (less sensitive than wall
  time to other processes competing for the cores); ``load``: 1-minute load average when the measurement ended.

Usage (prints a Markdown table; a run over all cases, or ``--merge`` for a subset, records it with the raw
numbers in ``forward_backward.md`` / ``.json`` next to this script):

    python packages/mtl-models/benchmarks/forward_backward.py [--keys mtan/cityscapes ...] [--merge]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

# (benchmark key, batch size, sample shape or None for the benchmark's own): small batches, and the dense
# models all at the 128x256 Cityscapes size, keep the run to minutes on 2 cores; their cost grows about
# linearly with the number of pixels (NYUv2's 288x384 is 3.4x more).
DENSE_SHAPE = (3, 128, 256)
CASES: list[tuple[str, int, tuple[int, ...] | None]] = [
    ("segnet_split/cityscapes", 2, None),
    ("mtan/cityscapes", 2, None),
    ("deeplabv3/cityscapes", 2, None),
    ("deeplabv3plus/cityscapes", 2, None),
    ("pspnet/nyuv2", 2, DENSE_SHAPE),
    ("resnet18_multimnist/multimnist", 32, None),
    ("multilenet/multimnist", 32, None),
    ("resnet18_office/office31", 4, None),
    ("celeba_cnn/celeba", 32, None),
    ("resnet18_celeba/celeba", 32, None),
    ("mpnn/qm9", 32, None),
    ("toy_mlp/toy", 64, None),
]
WIDTHS = (1.0, 0.25)
HERE = Path(__file__).resolve().parent


def _maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def measure(
    key: str, width: float, batch_size: int, shape: tuple[int, ...] | None, threads: int, min_seconds: float = 2.0
) -> dict[str, Any]:
    """Run in the child process: build, warm up, time; returns the measurements."""
    from mtl_models.testing import BENCHMARKS, example_input

    torch.set_num_threads(threads)
    cfg = BENCHMARKS[key]
    model = cfg.create(width=width).train()
    x = example_input(cfg, batch_size, shape, generator=torch.Generator().manual_seed(0))
    weights = None

    def step() -> None:
        nonlocal weights
        predictions = model(x)
        if weights is None:
            g = torch.Generator().manual_seed(1)
            weights = {t: torch.randn(p.shape, generator=g) for t, p in predictions.items()}
        sum((p * weights[t]).mean() for t, p in predictions.items()).backward()

    before = _maxrss_mib()
    step()
    extra = _maxrss_mib() - before
    times: list[float] = []
    cpu_times: list[float] = []
    while len(times) < 1 or (sum(times) < min_seconds and len(times) < 20):
        model.zero_grad(set_to_none=False)
        start, cpu_start = time.perf_counter(), time.process_time()
        step()
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    return {
        "key": key,
        "width": width,
        "batch_size": batch_size,
        "input": "graphs" if cfg.model == "mpnn" else "x".join(map(str, (shape or cfg.input_shape))),
        "parameters": sum(p.numel() for p in model.parameters()),
        "shared_parameters": sum(p.numel() for p in model.shared_parameters()),
        "seconds": statistics.median(times),
        "cpu_seconds": statistics.median(cpu_times),
        "repetitions": len(times),
        "peak_extra_mib": extra,
        "peak_rss_mib": _maxrss_mib(),
        "load_average": os.getloadavg()[0],
    }


def _table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| model / benchmark | width | batch x sample | parameters (shared) | fwd+bwd wall s | CPU s | "
        "peak extra MiB | load |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['key']} | {r['width']:g} | {r['batch_size']} x {r['input']} | {r['parameters']:,} "
            f"({r['shared_parameters']:,}) | {r['seconds']:.3g} | {r['cpu_seconds']:.3g} | {r['peak_extra_mib']:.0f} "
            f"| {r['load_average']:.1f} |"
        )
    return "\n".join(lines)


def _machine(threads: int) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} logical CPUs, torch {torch.__version__}, {threads} threads"


def _write_atomically(path: Path, text: str) -> None:
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as f:
        f.write(text)
    os.replace(f.name, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", nargs="*", default=[k for k, _, _ in CASES], help="benchmark keys to run")
    parser.add_argument("--merge", action="store_true", help="update the recorded rows of the given keys only")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--child", nargs=3, metavar=("KEY", "WIDTH", "BATCH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        key, width, batch = args.child
        shape = next(s for k, _, s in CASES if k == key)
        print(json.dumps(measure(key, float(width), int(batch), shape, args.threads)))
        return
    batches = {k: b for k, b, _ in CASES}
    unknown = sorted(set(args.keys) - set(batches))
    if unknown:
        parser.error(f"unknown keys {unknown}; valid: {sorted(batches)}")
    rows = []
    for key in args.keys:
        for width in WIDTHS:
            command = [sys.executable, __file__, "--threads", str(args.threads), "--child", key, str(width),
                       str(batches[key])]  # fmt: skip
            result = subprocess.run(command, capture_output=True, text=True, check=True)
            rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
            print(f"{key} width={width}: {rows[-1]['seconds']:.3f}s", file=sys.stderr)
    machine = _machine(args.threads)
    print(f"Machine: {machine}\n\n{_table(rows)}")
    if args.merge:  # splice these rows into the recorded ones (the run can be done in parts)
        recorded_file = HERE / "forward_backward.json"
        recorded = json.loads(recorded_file.read_text())["rows"] if recorded_file.exists() else []
        fresh = {(r["key"], r["width"]): r for r in rows}
        rows = [fresh.pop((r["key"], r["width"]), r) for r in recorded] + list(fresh.values())
        order = {k: i for i, (k, _, _) in enumerate(CASES)}
        rows.sort(key=lambda r: (order[r["key"]], -r["width"]))
    elif set(args.keys) != set(batches):
        return  # a partial run does not replace the recorded table
    _write_atomically(HERE / "forward_backward.json", json.dumps({"machine": machine, "rows": rows}, indent=1))
    _write_atomically(HERE / "forward_backward.md", f"Machine: {machine}\n\n{_table(rows)}\n")


if __name__ == "__main__":
    main()
