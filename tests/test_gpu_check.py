"""scripts/gpu_check.sh: the dry run lists the whole plan without a GPU (and without importing torch), its
estimated time stays within the 8-minute budget, every benchmark family of the issue is covered with the four
kinds of method, and the measuring code runs end to end on the CPU at tiny width for one family."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import gpu_check  # noqa: E402  (a script, not a package)


def test_the_dry_run_lists_the_plan_fast_without_a_gpu_or_torch() -> None:
    code = (
        "import runpy, sys; sys.argv = ['gpu_check.py', '--dry-run']\n"
        "try:\n    runpy.run_path('scripts/gpu_check.py', run_name='__main__')\n"
        "except SystemExit as e:\n    assert e.code == 0, e.code\n"
        "assert 'torch' not in sys.modules, 'the dry run imported torch'\n"
    )
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"CUDA_VISIBLE_DEVICES": ""},
    )
    assert done.returncode == 0, done.stderr
    assert time.perf_counter() - began < 10
    lines = done.stdout.splitlines()
    assert "CUDA tests of all packages" in done.stdout and "estimated in all (budget 480 s)" in lines[-1]
    for family in gpu_check.FAMILIES:
        for method in gpu_check.METHODS.values():
            assert f"steps: {family.name} {method} on cuda" in done.stdout
        assert f"cpu: {family.name} ls on cpu" in done.stdout
    assert sum("determinism:" in line for line in lines) == len(gpu_check.DETERMINISM_FAMILIES)
    # the shell wrapper passes the flag through
    wrapper = subprocess.run(["bash", "scripts/gpu_check.sh", "--dry-run"], cwd=ROOT, capture_output=True, text=True)
    assert wrapper.returncode == 0 and wrapper.stdout == done.stdout


def test_the_plan_fits_the_budget_and_covers_every_family_of_the_issue() -> None:
    from mtl_models.testing import BENCHMARKS

    items = gpu_check.plan(gpu_check.parser().parse_args([]))
    total = sum(i.estimate_s for i in items)
    assert total <= gpu_check.BUDGET_SECONDS == 480
    # an estimate is build + (warmup + steps) x step seconds x method factor
    exact = next(i for i in items if i.family == "cnn_celeba" and i.method == "exact" and i.part == "steps")
    assert exact.estimate_s == pytest.approx(2.0 + (2 + 4) * 0.02 * (1 + 2 * 40) / 3)
    covered = {f.benchmark for f in gpu_check.FAMILIES}
    wanted = {
        "mtan/nyuv2", "mtan/cityscapes", "segnet_split/nyuv2", "segnet_split/cityscapes", "pspnet/cityscapes3",
        "deeplabv3plus/nyuv2", "celeba_cnn/celeba", "resnet18_celeba/celeba", "mpnn/qm9",
        "resnet18_office/officehome",
    }  # fmt: skip
    assert wanted <= covered and covered <= set(BENCHMARKS)
    protocols = yaml.safe_load((ROOT / "pipelines" / "configs" / "protocols.yaml").read_text())
    assert all(f.protocol in protocols for f in gpu_check.FAMILIES)
    assert set(gpu_check.STEP_SECONDS) == {f.name for f in gpu_check.FAMILIES}
    # more work than the budget allows is refused by the dry run
    assert gpu_check.main(["--dry-run", "--budget", "60"]) == 1


def test_the_driver_measures_one_family_on_the_cpu_at_tiny_width(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CelebA CNN at 1/16 width on 16x16 images, LS only (the other methods differ only by name; K = 40 makes
    them cost seconds per step on a busy 2-core machine); the family's determinism item is added here."""
    monkeypatch.setattr(gpu_check, "DETERMINISM_FAMILIES", ("cnn_celeba",))
    out = tmp_path / "check.json"
    argv = ["--device", "cpu", "--families", "cnn_celeba", "--methods", "ls", "--width", "0.0625", "--scale",
            "0.25", "--batch-size", "2", "--warmup", "1", "--steps", "1", "--no-tests", "--out", str(out)]  # fmt: skip
    assert gpu_check.main(argv) == 0
    report = json.loads(out.read_text())
    assert report["machine"]["torch"] and report["machine"]["cpu"]
    parts = {(i["part"], i["family"], i["method"]): i["result"] for i in report["items"]}
    for part in ("steps", "determinism", "cpu"):
        result = parts[(part, "cnn_celeba", "ls")]
        assert result["median_ms"] > 0 and result["input_shape"] == [3, 16, 16] and result["batch_size"] == 2, part
    table = out.with_suffix(".md").read_text()
    assert "| cnn_celeba | 2 | 3x16x16 | ls |" in table and "| cnn_celeba |" in table.split("Determinism (LS)")[1]
    # a previous result calibrates the estimate; a budget too small skips (and records) what does not fit
    calibrated = gpu_check.plan(gpu_check.parser().parse_args([*argv, "--calibrate", str(out)]))
    step = next(i for i in calibrated if i.part == "steps")
    assert step.estimate_s == pytest.approx(2.0 + 2 * parts[("steps", "cnn_celeba", "ls")]["median_ms"] / 1000)
    assert gpu_check.main([*argv, "--budget", "1"]) == 0
    skipped = json.loads(out.read_text())["items"]
    assert all("budget" in i["result"]["skipped"] for i in skipped if i["part"] != "startup")
