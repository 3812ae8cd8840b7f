"""The GPU path, checked end to end on one GPU in at most 8 minutes (driver of scripts/gpu_check.sh).

    python scripts/gpu_check.py --dry-run            # the plan, its estimated time; needs no GPU
    python scripts/gpu_check.py                      # run it: JSON + markdown table under benchmarks/results/

What it does, in this order, each part under one overall deadline (``--budget``, default 480 s: a part that
would not fit in the time left is skipped and recorded as skipped, so the check never runs past it):

1. ``tests``: the CUDA tests of every package (the test files that ask ``torch.cuda.is_available()``, their
   tests whose name says ``cuda``): CPU/CUDA agreement, a smoke-profile run on cuda, SIGKILL + resume on
   cuda bit-identical, the Jacobian/aggregator/weighting device tests of mtl-core.
2. ``steps``: one paper-protocol training step loop per benchmark family (:data:`FAMILIES`), full width, paper
   resolution and the protocol's batch size (pipelines/configs/protocols.yaml), on stand-in data (random
   inputs of the benchmark's layout, targets of each task's kind), for LS and a representative exact-Jacobian,
   features-Jacobian and SAM-family method (:data:`METHODS`): median step time over ``--steps`` steps after
   ``--warmup`` steps and the peak CUDA memory, with the run layer's default determinism settings.
3. ``determinism``: LS again with ``train.deterministic: false`` (cuDNN autotuning, no deterministic kernels)
   for the families of :data:`DETERMINISM_FAMILIES`: the speed cost of the default.
4. ``cpu``: the LS and exact steps on the CPU (all cores), ``--cpu-steps`` timed steps after one warm-up: the
   CPU/GPU ratio.

Output: ``--out`` (JSON: machine, plan, every measurement) and the markdown table next to it (``.md``), the
machine named (GPU model, driver, torch / CUDA / cuDNN versions, CPU).

Time estimate (``--dry-run``, and the order of the parts): each step item costs
``build + (warmup + steps) x step time``, the step time being :data:`STEP_SECONDS` (LS step of the family on
an H100 and on a 16-core CPU; guesses from the models' size, to be replaced by the first measured JSON:
``--calibrate results.json``) times the method's factor (:func:`method_factor`: K backward passes for an
exact Jacobian, 3K + 1 forwards for SAMO); the tests cost :data:`TEST_SECONDS`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

IMPORTED = time.perf_counter()  # as a script: the process's start, to within the interpreter's own start-up
ROOT = Path(__file__).resolve().parents[1]
BUDGET_SECONDS = 480.0  # the 8 minutes on one H100
TEST_SECONDS = 150.0  # pytest start-up and collection (~20 s) + the CUDA tests (three trainings, one subprocess)
BUILD_SECONDS = 2.0  # building a full-width model and its step, moving it to the device
STARTUP_SECONDS = 20.0  # python, torch and CUDA start-up before the first item (counted against the budget)


@dataclass(frozen=True)
class Family:
    """One benchmark family: a model on a dataset (``mtl_models.testing.BENCHMARKS`` key) under a protocol."""

    name: str
    benchmark: str
    protocol: str


FAMILIES: tuple[Family, ...] = (
    Family("mtan_nyuv2", "mtan/nyuv2", "mtan_nyuv2"),
    Family("segnet_nyuv2", "segnet_split/nyuv2", "mtan_nyuv2"),
    Family("mtan_cityscapes", "mtan/cityscapes", "mtan_cityscapes"),
    Family("segnet_cityscapes", "segnet_split/cityscapes", "mtan_cityscapes"),
    Family("pspnet_cityscapes3", "pspnet/cityscapes3", "pspnet_cityscapes3"),
    Family("deeplabv3plus_nyuv2", "deeplabv3plus/nyuv2", "sweep_nyuv2"),
    Family("cnn_celeba", "celeba_cnn/celeba", "cnn_celeba"),
    Family("resnet18_celeba", "resnet18_celeba/celeba", "resnet_celeba"),
    Family("mpnn_qm9", "mpnn/qm9", "mpnn_qm9"),
    Family("resnet18_office", "resnet18_office/officehome", "resnet_office"),
)
#: representative method of each kind: the loss-weighting baseline, an exact-Jacobian aggregator, the
#: features-Jacobian (-UB) variant and the SAM family (seed 002's SAMO)
METHODS: dict[str, str] = {
    "ls": "ls",
    "exact": "exact+pcgrad",
    "features": "features+aligned_mtl",
    "sam": "samo+ls",
}
CPU_METHODS = ("ls",)  # an exact step on the CPU costs K backward passes of minutes: LS gives the ratio
DETERMINISM_FAMILIES = ("mtan_cityscapes", "pspnet_cityscapes3", "deeplabv3plus_nyuv2")
#: LS step seconds at full width, paper resolution and protocol batch: (H100, 16-core CPU); guesses
STEP_SECONDS: dict[str, tuple[float, float]] = {
    "mtan_nyuv2": (0.05, 2.5),
    "segnet_nyuv2": (0.04, 2.0),
    "mtan_cityscapes": (0.06, 3.0),
    "segnet_cityscapes": (0.05, 2.5),
    "pspnet_cityscapes3": (0.15, 12.0),
    "deeplabv3plus_nyuv2": (0.12, 9.0),
    "cnn_celeba": (0.02, 1.0),
    "resnet18_celeba": (0.03, 2.0),
    "mpnn_qm9": (0.03, 0.5),
    "resnet18_office": (0.06, 6.0),
}
NUM_TASKS = {"nyuv2": 3, "cityscapes": 2, "cityscapes3": 3, "celeba": 40, "qm9": 11, "officehome": 4}


def method_factor(kind: str, num_tasks: int) -> float:
    """Step time of a method over LS's (for the estimate): per-task backward passes for the exact Jacobian
    (a backward costs about two forwards), one backward per task through the features for ``features``, and
    3K + 1 forwards (with backwards) for SAMO (seed 002 sec. 4)."""
    if kind == "ls":
        return 1.0
    if kind == "exact":
        return (1 + 2 * num_tasks) / 3
    if kind == "features":
        return 1.0 + 0.3 * num_tasks
    return 3 * num_tasks + 1.0


@dataclass
class Item:
    """One thing the check does: ``tests``, or a step loop of a family and method on a device."""

    part: str
    estimate_s: float
    family: str | None = None
    method: str | None = None
    device: str | None = None
    deterministic: bool = True
    warmup: int = 0
    steps: int = 0
    result: dict[str, Any] = field(default_factory=dict)

    def label(self) -> str:
        if self.part == "tests":
            return "CUDA tests of all packages"
        if self.part == "startup":
            return "start-up: python, torch, CUDA context"
        setting = "" if self.deterministic else ", deterministic: false"
        return f"{self.part}: {self.family} {METHODS[self.method or 'ls']} on {self.device}{setting}"


def plan(args: argparse.Namespace) -> list[Item]:
    """The items of a check, in execution order, with their estimated seconds."""
    calibration = _calibration(args.calibrate) if args.calibrate else {}
    families = [f for f in FAMILIES if not args.families or f.name in args.families]
    items: list[Item] = [Item("startup", STARTUP_SECONDS)]
    if not args.no_tests:
        items.append(Item("tests", TEST_SECONDS))

    def step_item(part: str, family: Family, kind: str, device: str, *, deterministic: bool = True) -> Item:
        accelerator = part != "cpu"  # the parts timed on --device (the cpu part: the CPU side of the ratio)
        warmup, steps = (args.warmup, args.steps) if accelerator else (1, args.cpu_steps)
        measured = calibration.get((family.name, kind, "accelerator" if accelerator else "cpu"))
        guess = STEP_SECONDS[family.name][0 if accelerator else 1]
        per_step = measured or guess * method_factor(kind, NUM_TASKS[family.benchmark.split("/")[1]])
        estimate = BUILD_SECONDS + (warmup + steps) * per_step
        return Item(part, estimate, family.name, kind, device, deterministic, warmup, steps)

    methods = [m for m in METHODS if not args.methods or m in args.methods]
    items += [step_item("steps", f, m, args.device) for f in families for m in methods]
    items += [
        step_item("determinism", f, "ls", args.device, deterministic=False)
        for f in families
        if f.name in DETERMINISM_FAMILIES and "ls" in methods
    ]
    if not args.no_cpu:
        items += [step_item("cpu", f, m, "cpu") for f in families for m in CPU_METHODS if m in methods]
    return items


def _calibration(path: str) -> dict[tuple[str, str, str], float]:
    """Measured seconds per step of a previous check's JSON, keyed (family, method kind, accelerator|cpu)."""
    data = json.loads(Path(path).read_text())
    out = {}
    for item in data["items"]:
        if item["part"] in ("steps", "cpu") and "median_ms" in item["result"]:
            where = "cpu" if item["part"] == "cpu" else "accelerator"
            out[(item["family"], item["method"], where)] = item["result"]["median_ms"] / 1000
    return out


# ------------------------------------------------------------------------------------------ measurements
def machine() -> dict[str, Any]:
    """The machine, named: GPU model and memory, NVIDIA driver, torch / CUDA / cuDNN versions, CPU."""
    import torch

    info: dict[str, Any] = {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "python": platform.python_version(),
        "cpu": _cpu_model(),
        "cpu_threads": torch.get_num_threads(),
        "gpu": None,
        "driver": None,
    }
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info["gpu"] = f"{props.name} ({props.total_memory / 2**30:.0f} GiB)"
        try:
            query = ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]
            info["driver"] = subprocess.run(query, capture_output=True, text=True, timeout=20).stdout.strip() or None
        except (OSError, subprocess.SubprocessError):
            info["driver"] = None
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip() + f" x {os.cpu_count()}"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()} x {os.cpu_count()}"


def _protocol_batch_size(protocol: str) -> int:
    import yaml

    protocols = yaml.safe_load((ROOT / "pipelines" / "configs" / "protocols.yaml").read_text())
    return int(protocols[protocol]["train"]["batch_size"])


def _task_specs(dataset: str, tasks: Mapping[str, int]) -> dict[str, Any]:
    """The datasets' own task specs (losses) for the benchmark's tasks."""
    from mtl_data import tasks as t

    if dataset in ("nyuv2", "cityscapes"):
        return t.scene_tasks(tasks["segmentation"], normals="normal" in tasks)
    if dataset == "cityscapes3":
        return {
            "segmentation": t.SegmentationTask("segmentation", tasks["segmentation"]),
            "instance": t.InstanceTask("instance"),
            "disparity": t.DisparityTask("disparity"),
        }
    if dataset == "celeba":
        return t.binary_attribute_tasks(list(tasks))
    if dataset == "qm9":
        return {name: t.RegressionTask(name) for name in tasks}
    return t.classification_tasks(list(tasks), next(iter(tasks.values())))


def _targets(specs: Mapping[str, Any], predictions: Mapping[str, Any], generator: Any) -> dict[str, Any]:
    """Stand-in targets of each task's kind, shaped like the model's predictions (on their device)."""
    import torch

    from mtl_data import tasks as t

    out = {}
    for name, spec in specs.items():
        p = predictions[name].detach().cpu()
        if isinstance(spec, t.SegmentationTask):
            y = torch.randint(0, p.shape[1], (p.shape[0], *p.shape[2:]), generator=generator)
        elif isinstance(spec, t.ClassificationTask):
            y = torch.randint(0, p.shape[1], (p.shape[0],), generator=generator)
        elif isinstance(spec, t.BinaryAttributeTask):
            y = torch.randint(0, 2, (p.shape[0],), generator=generator).float()
        elif isinstance(spec, t.RegressionTask):
            y = torch.randn(p.shape[0], generator=generator)
        elif isinstance(spec, t.NormalTask):
            y = torch.nn.functional.normalize(torch.randn(p.shape, generator=generator), dim=1)
        else:  # depth, disparity, instance offsets: positive dense maps
            y = torch.rand(p.shape, generator=generator) + 0.1
        out[name] = y.to(predictions[name].device)
    return out


def measure_steps(item: Item, args: argparse.Namespace) -> dict[str, Any]:
    """Build the family's model at ``--width`` and its method's step on the item's device, feed one stand-in
    batch of the protocol's size at ``--scale`` x paper resolution, and time ``steps`` steps after ``warmup``."""
    import torch

    import mtl_core
    from mtl_models.testing import BENCHMARKS, example_input
    from mtl_pipelines.run import place, set_determinism

    family = next(f for f in FAMILIES if f.name == item.family)
    benchmark = BENCHMARKS[family.benchmark]
    device = torch.device(item.device or "cpu")
    set_determinism(item.deterministic, device)
    batch = args.batch_size or _protocol_batch_size(family.protocol)
    shape = benchmark.input_shape
    if shape and args.scale != 1.0:
        shape = (shape[0], *(max(8, round(s * args.scale)) for s in shape[1:]))
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    model = benchmark.create(width=args.width).to(device)
    specs = _task_specs(benchmark.dataset, benchmark.tasks)
    x = place(example_input(benchmark, batch, shape or None, generator=generator), device)
    with torch.no_grad():
        targets = _targets(specs, model(x), generator)
    if benchmark.model == "mpnn":
        targets = {name: x.y[:, i] for i, name in enumerate(benchmark.tasks)}  # the graphs carry their targets
    step = mtl_core.MTLStep(
        model, METHODS[item.method or "ls"], lambda params: torch.optim.Adam(params, lr=1e-4), tasks=list(specs)
    )

    def closure(_model: Any = None, tasks: Any = None) -> dict[str, Any]:
        names = list(specs) if tasks is None else list(tasks)
        predictions = model(x) if tasks is None else model(x, tasks=names)
        return {n: specs[n].loss(predictions[n], targets[n]) for n in names}

    sync: Callable[[], None] = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for _ in range(item.warmup):
        step.step(closure)
    sync()
    times = []
    for _ in range(item.steps):
        began = time.perf_counter()
        step.step(closure)
        sync()
        times.append(time.perf_counter() - began)
    result: dict[str, Any] = {
        "batch_size": batch,
        "input_shape": list(shape),
        "width": args.width,
        "median_ms": 1000 * statistics.median(times),
        "min_ms": 1000 * min(times),
    }
    if device.type == "cuda":
        result["peak_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    return result


def run_tests(args: argparse.Namespace, timeout: float) -> dict[str, Any]:
    """The CUDA tests of every package (``pytest -k cuda`` on the test files that check for CUDA)."""
    folders = [ROOT / "tests", ROOT / "pipelines" / "tests", *sorted((ROOT / "packages").glob("*/tests"))]
    files = sorted(
        str(p.relative_to(ROOT))
        for folder in folders
        for p in folder.glob("test_*.py")
        if "cuda.is_available" in p.read_text() or "needs_cuda" in p.read_text()
    )
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "cuda", "-rs", *files]
    began = time.perf_counter()
    try:
        done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        output, code = done.stdout + done.stderr, done.returncode
    except subprocess.TimeoutExpired as exc:
        output = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        code = "timeout"
    summary = [line for line in output.splitlines() if " passed" in line or " failed" in line or "error" in line]
    return {
        "files": files,
        "exit_code": code,
        "summary": summary[-1] if summary else "",
        "seconds": time.perf_counter() - began,
        "output_tail": output[-4000:],
    }


# ---------------------------------------------------------------------------------------------- outputs
def markdown(report: Mapping[str, Any]) -> str:
    """The short table of a check: machine, tests, step times, memory, CPU/GPU ratio, determinism cost."""
    m = report["machine"]
    lines = [
        "# GPU check",
        "",
        f"Machine: {m['gpu'] or 'no GPU'}, driver {m['driver']}; torch {m['torch']}, CUDA {m['cuda']}, "
        f"cuDNN {m['cudnn']}; CPU {m['cpu']} ({m['cpu_threads']} threads). {report['date']}; "
        f"{report['seconds']:.0f} s of a {report['budget_s']:.0f} s budget.",
        "",
    ]
    items = report["items"]
    tests = [i for i in items if i["part"] == "tests"]
    if tests:
        t = tests[0]["result"]
        lines += [f"CUDA tests: {t.get('summary') or t.get('skipped', '')} (exit {t.get('exit_code')})", ""]
    cpu = {(i["family"], i["method"]): i["result"] for i in items if i["part"] == "cpu" and "median_ms" in i["result"]}
    lines += [
        "| family | batch | input | method | ms / step | peak MiB | CPU ms / step | CPU / GPU |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for i in items:
        if i["part"] != "steps":
            continue
        r = i["result"]
        if "median_ms" not in r:
            lines.append(f"| {i['family']} | | | {METHODS[i['method']]} | {r.get('skipped') or r.get('error')} | | | |")
            continue
        c = cpu.get((i["family"], i["method"]))
        shape = "x".join(map(str, r["input_shape"])) or "graphs"
        peak = f"{r['peak_mib']:.0f}" if "peak_mib" in r else ""
        cpu_ms, ratio = (f"{c['median_ms']:.0f}", f"{c['median_ms'] / r['median_ms']:.0f}x") if c else ("", "")
        lines.append(
            f"| {i['family']} | {r['batch_size']} | {shape} | {METHODS[i['method']]} | {r['median_ms']:.1f} | "
            f"{peak} | {cpu_ms} | {ratio} |"
        )
    fast = {i["family"]: i["result"] for i in items if i["part"] == "determinism" and "median_ms" in i["result"]}
    default = {i["family"]: i["result"] for i in items if i["part"] == "steps" and i["method"] == "ls"}
    if fast:
        lines += ["", "Determinism (LS): `train.deterministic: true` (default) vs `false` (cuDNN autotuning):", ""]
        lines += ["| family | deterministic ms | fastest ms | cost |", "|---|---|---|---|"]
        for name, r in fast.items():
            d = default.get(name, {})
            if "median_ms" in d:
                cost = 100 * (d["median_ms"] / r["median_ms"] - 1)
                lines.append(f"| {name} | {d['median_ms']:.1f} | {r['median_ms']:.1f} | {cost:+.0f}% |")
    return "\n".join(lines) + "\n"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


# ------------------------------------------------------------------------------------------------- main
def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dry-run", action="store_true", help="print the plan and its estimated time; run nothing")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "gpu_check.json"))
    p.add_argument("--device", default="cuda", help="the accelerator (default cuda; cpu runs the logic on the CPU)")
    p.add_argument("--budget", type=float, default=BUDGET_SECONDS, help="overall deadline in seconds (480)")
    p.add_argument("--families", nargs="*", choices=[f.name for f in FAMILIES], help="default: all")
    p.add_argument("--methods", nargs="*", choices=list(METHODS), help="default: all")
    p.add_argument("--width", type=float, default=1.0, help="model width (1.0: the papers' full width)")
    p.add_argument("--scale", type=float, default=1.0, help="input resolution over the paper's (1.0)")
    p.add_argument("--batch-size", type=int, help="instead of the protocol's batch size")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps before timing, on the accelerator")
    p.add_argument("--steps", type=int, default=4, help="timed steps on the accelerator")
    p.add_argument("--cpu-steps", type=int, default=1, help="timed CPU steps (after one warm-up step)")
    p.add_argument("--no-tests", action="store_true", help="skip the CUDA tests")
    p.add_argument("--no-cpu", action="store_true", help="skip the CPU steps")
    p.add_argument("--calibrate", help="a previous check's JSON: its measured step times replace the guesses")
    return p


def main(argv: list[str] | None = None, *, started: float | None = None) -> int:
    """Run the check; the budget counts from ``started`` (the script's start; when called in-process, the call)."""
    started = time.perf_counter() if started is None else started
    args = parser().parse_args(argv)
    items = plan(args)
    total = sum(i.estimate_s for i in items)
    if args.dry_run:
        for i in items:
            print(f"{i.estimate_s:7.1f} s  {i.label()}")
        print(f"{total:7.1f} s  estimated in all (budget {args.budget:.0f} s); results -> {args.out}")
        return 0 if total <= args.budget else 1
    import torch

    if args.device != "cpu" and not torch.cuda.is_available():
        print(f"gpu_check: --device {args.device} but torch sees no CUDA device; --dry-run needs none", file=sys.stderr)
        return 2
    if torch.cuda.is_available():
        torch.cuda.init()
    items[0].result = {"seconds": time.perf_counter() - started}
    deadline = started + args.budget
    for i in items[1:]:
        left = deadline - time.perf_counter()
        if i.estimate_s > left:
            i.result = {"skipped": f"budget: {left:.0f} s left, {i.estimate_s:.0f} s estimated"}
        elif i.part == "tests":
            i.result = run_tests(args, timeout=left)
        else:
            try:
                i.result = measure_steps(i, args)
            except Exception as exc:  # one family's failure (e.g. out of memory) is a result, not the end
                i.result = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"}
            if i.device != "cpu" and torch.cuda.is_available():
                torch.cuda.empty_cache()
        print(f"{i.label()}: {json.dumps(i.result)[:200]}", flush=True)
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": machine(),
        "budget_s": args.budget,
        "estimate_s": total,
        "seconds": time.perf_counter() - started,
        "arguments": {k: v for k, v in vars(args).items() if k != "dry_run"},
        "items": [asdict(i) for i in items],
    }
    out = Path(args.out)
    _write(out, json.dumps(report, indent=2, sort_keys=True) + "\n")
    _write(out.with_suffix(".md"), markdown(report))
    print(f"gpu_check: {out} and {out.with_suffix('.md')} ({report['seconds']:.0f} s)")
    failed = [i for i in items if "error" in i.result or i.result.get("exit_code") not in (None, 0)]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(started=IMPORTED))
