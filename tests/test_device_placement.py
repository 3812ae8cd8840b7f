"""Every tensor of a run lives on the run's device: a run on a fake accelerator (tests/fake_device.py), where any
operator that mixes a placed tensor with a CPU tensor raises, trains, resumes and evaluates; checkpoints move
between devices; a CUDA device that is not there is an error naming the field. CUDA tests skip without a GPU.
"""

from __future__ import annotations

import copy
import sys
from collections import namedtuple
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from tiny_configs import scenes_config

from mtl_pipelines import cli
from mtl_pipelines import config as cfg
from mtl_pipelines import run as runmod
from mtl_pipelines.evaluate import evaluate_run
from mtl_pipelines.train import train

sys.path.insert(0, str(Path(__file__).parent))
from fake_device import FAKE, FakeDevice, Misplaced, on_fake

SCENES: dict[str, Any] = scenes_config(
    "placed",
    "exact+pcgrad",
    train={"epochs": 2, "seed": 5, "diagnostics_every": 1, "max_steps_per_epoch": 2},
    eval={"corruptions": {"names": ["gaussian_noise"], "severities": [3]}},
)
GRAPH_AND_MULTI_INPUT = {
    "multi_input": {
        "dataset": {"name": "digit_domains", "split_options": {s: {"size": 4} for s in ("train", "val", "test")}},
        "model": {"name": "resnet18_office", "options": {"width": 0.0625}},
        "method": {"name": "uw"},  # a learnable weighting: its parameters and Adam state live on the device too
    },
    "graph": {
        "dataset": {"name": "qm9", "options": {"subset": 30}},
        "model": {"name": "mpnn", "options": {"width": 0.125}},
        "method": {"name": "features+aligned_mtl"},
    },
}


# the fake device reports itself as "meta", for which load_state_dict warns that a copy is a no-op; the fake
# device's copy_ does copy (the resumed run below reproduces the CPU run)
pytestmark = pytest.mark.filterwarnings("ignore:for .*copying from a non-meta parameter:UserWarning")


def _without_seconds(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if k not in runmod.MEASURED_FIELDS}


@pytest.fixture
def fake_device(monkeypatch: pytest.MonkeyPatch) -> list[runmod.Trainee]:
    """Every CUDA device setting resolves to the fake accelerator; returns the trainees the run layer builds."""
    real = runmod.resolve_device
    monkeypatch.setattr(
        runmod, "resolve_device", lambda spec, field="train.device": FAKE if spec.startswith("cuda") else real(spec)
    )
    built: list[runmod.Trainee] = []
    original = runmod.Run.build

    def spy(self: runmod.Run, split: Any, device: torch.device) -> runmod.Trainee:
        built.append(original(self, split, device))
        return built[-1]

    monkeypatch.setattr(runmod.Run, "build", spy)
    return built


def _assert_placed(trainee: runmod.Trainee) -> None:
    """Parameters, buffers (BatchNorm statistics), the method's tensors and every optimiser state of dim > 0
    live on the fake device (Adam's 0-dim step counters stay on the CPU, as torch keeps them with CUDA)."""
    tensors = {f"model.{n}": t for n, t in [*trainee.model.named_parameters(), *trainee.model.named_buffers()]}
    tensors.update({f"combiner.{n}": t for n, t in trainee.step.combiner.named_parameters()})
    for i, opt in enumerate(trainee.step.optimizers):
        for j, state in enumerate(opt.state.values()):
            tensors.update({f"optimizer{i}.state{j}.{k}": v for k, v in state.items() if isinstance(v, torch.Tensor)})
    misplaced = [name for name, t in tensors.items() if t.dim() > 0 and not on_fake(t)]
    assert not misplaced, f"not on the run's device: {misplaced[:5]}"
    assert any(name.startswith("optimizer") for name in tensors)


def test_the_fake_device_catches_a_tensor_left_on_the_cpu() -> None:
    """The harness can fail: a model on the fake device fed a CPU batch raises, fed a placed batch agrees with
    the CPU computation bit for bit."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten())
    x = torch.randn(2, 3, 6, 6)
    expected = model(x)
    with FakeDevice():
        model.to(FAKE)
        with pytest.raises(Misplaced, match=r"\(2, 3, 6, 6\) on cpu"):
            model(x)
        assert torch.equal(model(runmod.place(x, FAKE)).cpu(), expected)


def test_training_resumed_on_another_device_and_evaluated_there_matches_cpu(
    fake_device: list[runmod.Trainee], tmp_path: Path
) -> None:
    """A run trained for one epoch on the CPU, resumed on the accelerator (checkpoint loaded onto the placed
    model, optimiser and method) and evaluated there, clean and corrupted test sets included, gives the CPU
    run's numbers; the fake device computes on the CPU, so any difference is a placement or state error.

    ``deterministic: false``: with deterministic algorithms torch computes bilinear ``interpolate`` on any
    non-CPU device (the fake one included) through its decomposition, not the CPU kernel (1 ulp apart); the
    other fake-device tests run with the default and so take the CUDA paths of that mode."""
    config = copy.deepcopy(SCENES)
    config["train"]["deterministic"] = False
    reference = train(config, tmp_path / "cpu", progress=False, device="cpu")
    assert train(config, tmp_path / "moved", progress=False, device="cpu", stop_after_epochs=1) == {"stopped_after": 1}
    with FakeDevice():
        moved = train(config, tmp_path / "moved", progress=False, device="cuda")
        evaluated = evaluate_run(tmp_path / "moved", progress=False, device="cuda")
    _assert_placed(fake_device[-1])
    assert _without_seconds(moved) == _without_seconds(reference)
    assert evaluated == evaluate_run(tmp_path / "cpu", progress=False, device="cpu")
    assert evaluated["corrupted"]["gaussian_noise"]["3"]
    # the checkpoint written on the accelerator holds CPU tensors only, loadable with the safe loader
    state = torch.load(tmp_path / "moved" / runmod.CHECKPOINT, weights_only=True)
    assert all(type(t) is torch.Tensor and t.device.type == "cpu" for t in state["model"].values())


@pytest.mark.parametrize("kind", sorted(GRAPH_AND_MULTI_INPUT))
def test_multi_input_and_graph_batches_train_on_the_device(
    fake_device: list[runmod.Trainee], tmp_path: Path, kind: str
) -> None:
    """Office-style ``{task: images}`` inputs and PyG ``Batch`` graphs (targets read from ``batch.y``)."""
    config = {
        "name": kind,
        **GRAPH_AND_MULTI_INPUT[kind],
        "optimizer": {"name": "adam", "lr": 1e-3},
        "train": {"epochs": 1, "batch_size": 4, "seed": 1, "max_steps_per_epoch": 2, "diagnostics_every": 1},
        "eval": {"batch_size": 8},
    }
    with FakeDevice():
        result = train(config, tmp_path / kind, progress=False, device="cuda")
    _assert_placed(fake_device[-1])
    assert result["epochs"] == 1 and result["steps"] >= 1


def test_place_moves_every_batch_type() -> None:
    from torch_geometric.data import Batch, Data

    Pair = namedtuple("Pair", "x y")
    graph = Batch.from_data_list([Data(x=torch.ones(3, 2), edge_index=torch.tensor([[0, 1], [1, 2]]))] * 2)
    batch = {"a": torch.ones(2), "b": [torch.ones(1), (torch.ones(1), Pair(torch.ones(1), 7))], "g": graph}
    placed = runmod.place(batch, torch.device("meta"))
    leaves = [placed["a"], placed["b"][0], placed["b"][1][0], placed["b"][1][1].x, placed["g"].x]
    assert all(t.device.type == "meta" for t in [*leaves, placed["g"].edge_index])
    assert isinstance(placed["b"][1][1], Pair) and placed["b"][1][1].y == 7


@pytest.mark.parametrize(
    ("where", "argv_device", "field"),
    [("config", None, "train.device"), ("flag", "cuda:0", "--device")],
)
def test_cuda_where_there_is_none_exits_2_naming_the_field_and_writes_nothing(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    where: str,
    argv_device: str | None,
    field: str,
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    config = copy.deepcopy(SCENES)
    if where == "config":
        config["train"]["device"] = "cuda"
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    argv = ["train", str(path), "--run-dir", str(tmp_path / "r")] + (["--device", argv_device] if argv_device else [])
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert f"{field}:" in err and "no" in err and "CUDA" in err and "'cpu'" in err
    assert not (tmp_path / "r").exists()


def test_the_device_is_not_part_of_the_run_identity_and_is_validated() -> None:
    on_gpu = copy.deepcopy(SCENES)
    on_gpu["train"]["device"] = "cuda:1"
    assert cfg.config_hash(cfg.resolve(on_gpu)) == cfg.config_hash(cfg.resolve(SCENES))
    on_gpu["train"]["device"] = "gpu"
    with pytest.raises(cfg.ConfigError, match=r"train\.device: 'gpu'"):
        cfg.resolve(on_gpu)
    assert runmod.resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(runmod.DeviceError, match="valid: auto, cpu, cuda, cuda:N"):
        runmod.resolve_device("tpu")


# ---------------------------------------------------------------------------------------------------- CUDA
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (scripts/gpu_check.sh)")


@needs_cuda
def test_cuda_run_agrees_with_cpu(tmp_path: Path) -> None:
    """CPU vs CUDA runs of one config agree within float32 accumulation differences (2 epochs, 4 steps)."""
    config = {**SCENES, "eval": {"batch_size": 4}}
    on_cpu = train(config, tmp_path / "cpu", progress=False, device="cpu")
    on_cuda = train(config, tmp_path / "cuda", progress=False, device="cuda")
    for task, metrics in on_cpu["last"].items():
        for name, value in metrics.items():
            assert on_cuda["last"][task][name] == pytest.approx(value, rel=1e-2, abs=1e-3), (task, name)
    # the CUDA-trained run evaluates on the CPU
    assert evaluate_run(tmp_path / "cuda", progress=False, device="cpu")["test"]


@needs_cuda
def test_a_smoke_profile_run_trains_and_evaluates_on_cuda(tmp_path: Path) -> None:
    """The first run of the smoke profile (what `snakemake --profile pipelines/profiles/smoke` trains), on cuda."""
    from mtl_pipelines import grid

    runs = grid.expand(grid.load_profile("smoke"))
    config = next(iter(runs.values())).config
    result = train(config, tmp_path / "run", progress=False, device="cuda")
    evaluated = evaluate_run(tmp_path / "run", progress=False, device="cuda")
    assert result["epochs"] == config["train"]["epochs"] and evaluated["test"]
    assert not runmod.nonfinite_fields(evaluated)


CELEBA_ON_CUDA: dict[str, Any] = {
    "name": "cuda-resume",
    "dataset": {
        "name": "celeba_standin",
        "split_options": {"train": {"size": 32}, "val": {"size": 8}, "test": {"size": 8}},
    },
    "model": {"name": "celeba_cnn", "options": {"width": 0.25}},
    "method": {"name": "exact+pcgrad"},  # random task order: the CUDA and CPU RNG states must be restored
    "optimizer": {"name": "adam", "lr": 1e-3},
    "train": {"epochs": 3, "batch_size": 8, "seed": 3, "max_steps_per_epoch": 2, "device": "cuda"},
    "eval": {"batch_size": 8},
}


@needs_cuda
def test_a_cuda_run_killed_and_resumed_ends_bit_identical(tmp_path: Path) -> None:
    """SIGKILL after the first checkpoint on cuda, resume on cuda: the uninterrupted run's metrics and weights,
    bit for bit. CelebA CNN: every operator it uses has a deterministic CUDA kernel (train.deterministic: true;
    the segmentation models use some that have none, see mtl_pipelines.run.set_determinism)."""
    sys.path.insert(0, str(Path(__file__).parent))
    from run_helpers import kill_after_first_checkpoint

    reference = train(CELEBA_ON_CUDA, tmp_path / "reference", progress=False)
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(CELEBA_ON_CUDA))
    assert kill_after_first_checkpoint(path, tmp_path / "killed") in (1, 2)
    resumed = train(CELEBA_ON_CUDA, tmp_path / "killed", progress=False)
    assert _without_seconds(resumed) == _without_seconds(reference)
    a = torch.load(tmp_path / "killed" / runmod.CHECKPOINT, weights_only=True)["model"]
    b = torch.load(tmp_path / "reference" / runmod.CHECKPOINT, weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_reserved_gpus_map_onto_the_run_device_and_an_invisible_gpu_is_exit_2(tmp_path: Path) -> None:
    """A workflow job's `gpu` resource decides its --device; a GPU job whose GPU the scheduler did not make
    visible (CUDA_VISIBLE_DEVICES empty) stops with exit 2 naming the variable, before anything is written."""
    import os
    import subprocess

    assert [runmod.device_for_gpus(g) for g in (0, "0", None, 1, "2")] == ["cpu", "cpu", "cpu", "cuda", "cuda"]
    with pytest.raises(cfg.ConfigError, match="gpus: -1"):
        runmod.device_for_gpus(-1)
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(SCENES))
    argv = [sys.executable, "-m", "mtl_pipelines.cli", "train", str(path), "--run-dir", str(tmp_path / "r")]
    done = subprocess.run(
        [*argv, "--device", runmod.device_for_gpus(1)],
        capture_output=True, text=True, timeout=120, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "--device: 'cuda'" in done.stderr and "CUDA_VISIBLE_DEVICES=''" in done.stderr
    assert not (tmp_path / "r").exists()
