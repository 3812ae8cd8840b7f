"""Tests of the CelebA stand-in: layout, documented structure, and attributes decidable from pixels."""

from __future__ import annotations

import colorsys
import hashlib
import time

import numpy as np
import pytest
import torch
from scipy import ndimage

from mtl_data.synthetic.attributes import ATTRIBUTES, MultiAttributes
from mtl_data.tasks import BinaryAttributeTask

IDX = {name: k for k, name in enumerate(ATTRIBUTES)}


@pytest.fixture(scope="module")
def sample() -> MultiAttributes:
    return MultiAttributes("train", seed=1, size=600)


@pytest.fixture(scope="module")
def renders() -> list:
    ds = MultiAttributes("val", seed=2, size=160)
    return [ds.render_item(i) for i in range(160)]


def test_layout_and_tasks() -> None:
    ds = MultiAttributes("test", size=5)
    assert ds.is_standin and "STAND-IN" in ds.description
    assert len(ATTRIBUTES) == 40 == len(set(ATTRIBUTES)) and list(ds.tasks) == list(ATTRIBUTES)
    assert all(isinstance(t, BinaryAttributeTask) for t in ds.tasks.values())
    x, y = ds[4]
    assert x.shape == (3, 64, 64) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    assert list(y) == list(ATTRIBUTES)
    for v in y.values():
        assert v.dtype == torch.float32 and v.shape == () and v.item() in (0.0, 1.0)
    batch = torch.utils.data.default_collate([ds[i] for i in range(5)])
    assert batch[1]["main_large"].shape == (5,)
    assert ds.tasks["noisy"].loss(torch.zeros(5), batch[1]["noisy"]) > 0
    assert MultiAttributes.default_sizes == {"train": 10000, "val": 2000, "test": 2000}
    assert MultiAttributes("test", size=2, resolution=(32, 32))[0][0].shape == (3, 32, 32)


def test_logical_structure(sample: MultiAttributes) -> None:
    A = sample.attributes.numpy().astype(bool)
    col = {name: A[:, k] for name, k in IDX.items()}
    shapes = col["main_circle"].astype(int) + col["main_square"] + col["main_triangle"] + col["main_star"]
    assert (shapes == 1).all()
    assert not (col["main_striped"] & col["main_dotted"]).any()
    assert (col["main_red"].astype(int) + col["main_green"] + col["main_blue"] <= 1).all()
    assert not (col["main_circle"] & col["main_rotated"]).any()
    assert not (col["has_third"] & ~col["has_second"]).any()
    for name in ("second_same_shape", "second_same_colour", "objects_overlap", "second_small"):
        assert not (col[name] & ~col["has_second"]).any(), name
    bg = col["bg_gradient"].astype(int) + col["bg_checkered"] + col["bg_noisy_texture"]
    assert (bg <= 1).all()
    # every attribute occurs, none is (almost) constant
    rates = A.mean(axis=0)
    assert rates.min() > 0.04 and rates.max() < 0.8, dict(zip(ATTRIBUTES, rates.round(2)))


def test_documented_correlations(sample: MultiAttributes) -> None:
    corr = sample.correlation()
    assert corr.shape == (40, 40) and np.allclose(np.diag(corr), 1.0)

    def c(a: str, b: str) -> float:
        return float(corr[IDX[a], IDX[b]])

    assert c("bg_dark", "has_stars") > 0.3  # night
    assert c("bg_dark", "main_glow") > 0.15  # night
    assert c("bg_dark", "bg_warm") < -0.1  # night
    assert c("has_second", "has_frame") > 0.05  # busy
    assert c("has_second", "has_third") > 0.3  # has_third implies has_second
    assert c("main_square", "main_outlined") > 0.1  # geometric
    assert c("main_circle", "main_square") < -0.2  # one-hot
    assert c("second_same_shape", "second_same_colour") > 0.2
    assert abs(c("blurry", "main_red")) < 0.12  # independent
    assert abs(c("main_left", "main_top")) < 0.12


def _hue_family(rgb: np.ndarray) -> int:
    h, _, _ = colorsys.rgb_to_hsv(*rgb)
    return int(np.round(h * 6)) % 6


def test_main_colour_is_decidable_from_the_pixels(renders: list) -> None:
    agree = []
    for r in renders:
        inner = ndimage.binary_erosion(r.main_mask, iterations=2)
        if inner.sum() < 5:
            continue
        family = _hue_family(np.median(r.image[inner], axis=0))
        got = (family == 0, family == 2, family == 4)
        want = tuple(bool(r.attributes[IDX[k]]) for k in ("main_red", "main_green", "main_blue"))
        agree.append(got == want)
    assert len(agree) > 100 and np.mean(agree) > 0.95


def test_position_and_size_are_decidable_from_the_main_object(renders: list) -> None:
    left, top, large, centred = [], [], [], []
    for r in renders:
        ys, xs = np.nonzero(r.main_mask)
        h, w = r.main_mask.shape
        left.append((xs.mean() + 0.5 < w / 2) == bool(r.attributes[IDX["main_left"]]))
        top.append((ys.mean() + 0.5 < h / 2) == bool(r.attributes[IDX["main_top"]]))
        # circumradius: distance of the farthest drawn pixel centre from the centroid
        reach = np.hypot(xs - xs.mean(), ys - ys.mean()).max()
        large.append((reach > 0.25 * 64) == bool(r.attributes[IDX["main_large"]]))
        near = max(abs(xs.mean() + 0.5 - w / 2), abs(ys.mean() + 0.5 - h / 2)) < 0.1 * 64  # 0.08 S vs 0.12 S
        centred.append(near == bool(r.attributes[IDX["main_centered"]]))
    assert np.mean(left) > 0.95 and np.mean(top) > 0.95
    assert np.mean(large) > 0.97 and np.mean(centred) > 0.97


def test_background_frame_and_noise_are_decidable(renders: list) -> None:
    dark, frame, noisy, count = [], [], [], []
    frame_colours = np.array([[0.95, 0.9, 0.2], [0.15, 0.1, 0.35]])
    for r in renders:
        a = {k: bool(r.attributes[i]) for k, i in IDX.items()}
        img = r.image
        band = img[4:9, 8:-8] if not a["has_frame"] else img[5:10, 8:-8]
        value = np.median(band.max(axis=-1))  # HSV value of the background
        if not a["vignette"]:
            dark.append((value < 0.43) == a["bg_dark"])
        if not (a["vignette"] or a["noisy"] or a["blurry"]):
            ring = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]])
            is_frame = min(np.abs(ring - fc).max() for fc in frame_colours) < 0.02
            frame.append(is_frame == a["has_frame"])
        residual = np.abs(img - ndimage.median_filter(img, size=(3, 3, 1))).mean()
        noisy.append((residual > 0.02) == a["noisy"])
        count.append((r.second_mask.any() == a["has_second"]) and (r.third_mask.any() == a["has_third"]))
    assert np.mean(dark) > 0.9 and np.mean(frame) > 0.97 and np.mean(noisy) > 0.95
    assert np.mean(count) > 0.97


def _digests(ds: MultiAttributes) -> set[str]:
    return {hashlib.sha1(ds[i][0].numpy().tobytes()).hexdigest() for i in range(len(ds))}


def test_determinism_and_disjoint_splits() -> None:
    a = MultiAttributes("train", seed=3, size=20, resolution=(32, 32))
    b = MultiAttributes("train", seed=3, size=20, resolution=(32, 32))
    assert torch.equal(a.attributes, b.attributes) and _digests(a) == _digests(b)
    assert torch.equal(MultiAttributes("train", seed=3, size=5, resolution=(32, 32)).attributes, a.attributes[:5])
    other = [MultiAttributes(s, seed=3, size=20, resolution=(32, 32)) for s in ("val", "test")]
    assert not (_digests(a) & _digests(other[0])) and not (_digests(a) & _digests(other[1]))
    assert not (_digests(other[0]) & _digests(other[1]))
    assert _digests(MultiAttributes("train", seed=4, size=20, resolution=(32, 32))) != _digests(a)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="split"):
        MultiAttributes("validation")
    with pytest.raises(ValueError, match="resolution"):
        MultiAttributes("test", size=1, resolution=(8, 8))
    with pytest.raises(ValueError, match="unknown option"):
        MultiAttributes("test", size=1, attributes=10)
    with pytest.raises(IndexError):
        MultiAttributes("test", size=1)[3]


def test_generation_speed() -> None:
    start = time.process_time()
    MultiAttributes("train", seed=9, size=200)
    per_image = (time.process_time() - start) / 200
    assert per_image < 0.02, per_image  # the 14000 default images in well under 5 minutes
