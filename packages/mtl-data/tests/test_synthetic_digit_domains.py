"""Tests of the digit-domain (multi-input Office) stand-in."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mtl_data.base import MultiInputDataset
from mtl_data.synthetic.digit_domains import DOMAINS, DigitDomains, mnist_digits, render_digit, source_indices
from mtl_data.tasks import ClassificationTask


@pytest.fixture(scope="module")
def train() -> DigitDomains:
    return DigitDomains("train", size=500)


@pytest.fixture(scope="module")
def test() -> DigitDomains:
    return DigitDomains("test", size=200)


def test_layout_tasks_and_loader(test: DigitDomains) -> None:
    assert isinstance(test, MultiInputDataset) and test.is_standin and "STAND-IN" in test.description
    assert list(test.domains) == list(test.tasks) == list(DOMAINS)
    assert all(isinstance(t, ClassificationTask) and t.num_classes == 10 for t in test.tasks.values())
    image, label = test.domains["photo"][3]
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32 and 0 <= image.min() and image.max() <= 1
    assert label.dtype == torch.int64 and label.shape == () and 0 <= int(label) < 10
    batches = list(test.loader(batch_size=64))
    x, y = batches[0]
    assert list(x) == list(DOMAINS) and x["webcam"].shape == (64, 3, 32, 32) and y["outline"].shape == (64,)
    assert sum(len(b[1]["plain"]) for b in batches) == 200  # evaluation: every image once
    assert DigitDomains("test", size=2, resolution=(48, 40)).domains["plain"][0][0].shape == (3, 48, 40)


def test_labels_are_the_source_digits_labels(train: DigitDomains) -> None:
    _, labels = mnist_digits()
    for domain in DOMAINS:
        d = train.domains[domain]
        assert torch.equal(d.labels, torch.from_numpy(labels[d.sources]))
        counts = np.bincount(d.labels.numpy(), minlength=10)
        assert counts.min() >= 25, counts  # class-balanced: 50 +- noise of 500


def test_source_digits_are_disjoint_across_splits_and_domains() -> None:
    splits = {s: set(source_indices(s).tolist()) for s in ("train", "val", "test")}
    assert [len(v) for v in splits.values()] == [3000, 1000, 1000]
    assert not (splits["train"] & splits["val"]) and not (splits["train"] & splits["test"])
    assert not (splits["val"] & splits["test"])
    _, labels = mnist_digits()
    assert (np.bincount(labels[list(splits["test"])], minlength=10) == 100).all()  # stratified 60/20/20
    val = DigitDomains("val", resolution=(16, 16))
    per_domain = [set(val.domains[d].sources.tolist()) for d in DOMAINS]
    assert all(len(s) == 250 for s in per_domain) and set().union(*per_domain) == splits["val"]
    assert all(not (a & b) for i, a in enumerate(per_domain) for b in per_domain[i + 1 :])
    shared = DigitDomains("val", size=40, resolution=(16, 16), shared_digits=True)
    assert all(np.array_equal(shared.domains[d].sources, shared.domains["plain"].sources) for d in DOMAINS)
    assert set(shared.domains["plain"].sources.tolist()) <= splits["val"]


def _digests(ds: DigitDomains) -> set[str]:
    return {hashlib.sha1(img.tobytes()).hexdigest() for d in DOMAINS for img in ds.domains[d].images}


def test_deterministic_prefix_stable_and_split_disjoint(test: DigitDomains) -> None:
    prefix = DigitDomains("test", size=30)  # same images as the first 30 of the size-200 fixture
    for d in DOMAINS:
        assert np.array_equal(prefix.domains[d].images, test.domains[d].images[:30])
    other_seed = DigitDomains("test", seed=1, size=30)
    assert not np.array_equal(other_seed.domains["photo"].images, prefix.domains["photo"].images)
    assert not (_digests(DigitDomains("val", size=30)) & _digests(test))
    # more images than source digits (250 per style in the test split): digits are re-rendered
    big = DigitDomains("test", size=252, resolution=(16, 16))
    d = big.domains["plain"]
    assert d.sources[0] == d.sources[250] and not np.array_equal(d.images[0], d.images[250])


def _style_features(images: np.ndarray) -> np.ndarray:
    x = images.astype(np.float64) / 255
    grey = x.mean(axis=1)
    brightness = grey.mean(axis=(1, 2))
    colourfulness = x.std(axis=1).mean(axis=(1, 2))
    paper_grain = np.median(np.abs(np.diff(grey, axis=2)), axis=(1, 2))  # typical, not stroke, contrast
    return np.stack([brightness, colourfulness, paper_grain], axis=1)


def test_styles_are_distinct_domains(train: DigitDomains, test: DigitDomains) -> None:
    # a per-style diagonal Gaussian on three image statistics recognises the domain of an image
    feats = [_style_features(train.domains[d].images) for d in DOMAINS]
    mu = np.stack([f.mean(axis=0) for f in feats])
    sd = np.stack([f.std(axis=0) for f in feats]) + 1e-3
    correct = 0
    for k, d in enumerate(DOMAINS):
        f = _style_features(test.domains[d].images)[:, None]
        log_lik = -(((f - mu[None]) / sd[None]) ** 2).sum(-1) / 2 - np.log(sd).sum(-1)[None]
        correct += (log_lik.argmax(axis=1) == k).sum()
    assert correct / (4 * 200) > 0.97


def _edges(images: np.ndarray, smooth: bool) -> torch.Tensor:
    g = torch.from_numpy(images.astype(np.float32) / 255).mean(1, keepdim=True)
    if smooth:
        g = F.avg_pool2d(g, 3, stride=1, padding=1)
    m = (g[..., :, 1:] - g[..., :, :-1])[..., :-1, :].abs() + (g[..., 1:, :] - g[..., :-1, :])[..., :, :-1].abs()
    m = F.avg_pool2d(m, 3, stride=2, padding=1).flatten(1)
    m = m - m.mean(1, keepdim=True)
    return m / m.norm(dim=1, keepdim=True)


def test_digits_stay_legible_in_every_style(train: DigitDomains, test: DigitDomains) -> None:
    # 1-nearest-neighbour on stroke edges (polarity-free): far above the 10% chance level
    for d in DOMAINS:
        accuracies = []
        for smooth in (False, True):
            nearest = (_edges(test.domains[d].images, smooth) @ _edges(train.domains[d].images, smooth).T).argmax(1)
            accuracies.append((train.domains[d].labels[nearest] == test.domains[d].labels).float().mean().item())
        assert max(accuracies) > 0.4, (d, accuracies)


def test_render_digit_validates_the_domain() -> None:
    digits, _ = mnist_digits()
    with pytest.raises(ValueError, match="unknown digit domain 'sketch'"):
        render_digit(digits[0], "sketch", 32, 32, np.random.default_rng(0))


def test_bad_arguments_and_cache(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="split"):
        DigitDomains("dev")
    with pytest.raises(ValueError, match="unknown option"):
        DigitDomains("test", size=1, domains=("plain",))
    with pytest.raises(ValueError, match="size"):
        DigitDomains("test", size=-3)
    first = DigitDomains("test", size=8, cache_dir=tmp_path)
    again = DigitDomains("test", size=8, cache_dir=tmp_path)
    assert len(list(tmp_path.iterdir())) == 1
    assert np.array_equal(first.domains["webcam"].images, again.domains["webcam"].images)
    with pytest.raises(IndexError):
        first.domains["plain"][8]
