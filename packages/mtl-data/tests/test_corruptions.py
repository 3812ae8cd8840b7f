"""Tests of the common corruptions: API contract, original parameter tables, per-corruption semantics."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage

from mtl_data import corruptions as C
from mtl_data.corruptions import functions as F
from mtl_data.corruptions import ops


def _scene_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A structured float CxHxW image in [0, 1]: gradients, a saturated block, texture, a dark patch."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    x = np.stack([0.2 + 0.6 * xx, 0.2 + 0.6 * yy, 0.5 + 0.3 * np.sin(9 * xx) * np.cos(7 * yy)])
    x[:, h // 4 : h // 2, w // 4 : w // 2] = np.array([0.9, 0.2, 0.1])[:, None, None]
    x[:, 3 * h // 4 :, : w // 3] *= 0.3
    x += 0.03 * rng.standard_normal(x.shape)
    return np.clip(x, 0, 1).astype(np.float32)


IMAGES = {(32, 32): _scene_image(32, 32), (48, 64): _scene_image(48, 64, 1)}


# --------------------------------------------------------------------------------------------- API
def test_names_are_the_15_benchmark_then_4_extra() -> None:
    assert len(C.names()) == 19 and len(set(C.names())) == 19
    assert C.names(include_extra=False) == list(C.BENCHMARK_CORRUPTIONS)
    assert C.names()[15:] == ["speckle_noise", "gaussian_blur", "spatter", "saturate"]
    for profile in C.REFERENCE_SIZE:
        assert set(C.SEVERITY_PARAMETERS[profile]) == set(C.names())
        assert all(len(v) == 5 for v in C.SEVERITY_PARAMETERS[profile].values())


@pytest.mark.parametrize("shape", list(IMAGES))
@pytest.mark.parametrize("name", C.names())
def test_every_severity_is_a_deterministic_image_in_range(name: str, shape: tuple[int, int]) -> None:
    x = IMAGES[shape]
    outs = []
    for severity in C.SEVERITIES:
        y = C.apply(x, name, severity, seed=(7, 3))
        assert isinstance(y, np.ndarray) and y.dtype == np.float32 and y.shape == x.shape
        assert np.isfinite(y).all() and y.min() >= 0.0 and y.max() <= 1.0
        np.testing.assert_array_equal(y, C.apply(x, name, severity, seed=(7, 3)))
        assert not np.array_equal(y, x), f"{name} severity {severity} left the image unchanged"
        outs.append(y)
    # severities are different corruptions
    assert len({o.tobytes() for o in outs}) == 5


RANDOM_CORRUPTIONS = [
    "gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise", "glass_blur", "motion_blur",
    "snow", "frost", "fog", "spatter", "elastic_transform",
]  # fmt: skip


@pytest.mark.parametrize("name", RANDOM_CORRUPTIONS)
def test_seed_and_index_change_the_random_corruptions(name: str) -> None:
    x = IMAGES[(48, 64)]
    a = C.apply(x, name, 3, seed=(0, 1))
    assert not np.array_equal(a, C.apply(x, name, 3, seed=(0, 2)))
    assert not np.array_equal(a, C.apply(x, name, 3, seed=(1, 1)))


@pytest.mark.parametrize("name", C.names())
def test_torch_input_gives_torch_output_equal_to_numpy(name: str) -> None:
    x = IMAGES[(32, 32)]
    y = C.apply(torch.from_numpy(x), name, 2, seed=5)
    assert isinstance(y, torch.Tensor) and y.dtype == torch.float32
    np.testing.assert_array_equal(y.numpy(), C.apply(x, name, 2, seed=5))


def test_grey_images_stay_grey() -> None:
    x = IMAGES[(32, 32)][:1]
    y = C.apply(x, "fog", 3, seed=0)
    assert y.shape == (1, 32, 32) and 0 <= y.min() and y.max() <= 1


# Severity 1 vs 5 (mean L1 distance to the clean image over a few images): larger at severity 5 for
# all but elastic_transform, whose original tables use large smooth displacements at severities 1-2.
@pytest.mark.parametrize("name", [n for n in C.names() if n != "elastic_transform"])
def test_severity_5_is_further_from_the_clean_image_than_severity_1(name: str) -> None:
    images = [_scene_image(48, 64, s) for s in range(3)]

    def distance(severity: int) -> float:
        return float(
            np.mean([np.abs(C.apply(x, name, severity, seed=(0, i)) - x).mean() for i, x in enumerate(images)])
        )

    assert distance(5) > distance(1)


def test_bad_arguments_raise_value_errors_naming_the_value() -> None:
    x = IMAGES[(32, 32)]
    with pytest.raises(ValueError, match="unknown corruption 'rain'"):
        C.apply(x, "rain", 1)
    for severity in (0, 6, 2.0, "3", True):
        with pytest.raises(ValueError, match="severity"):
            C.apply(x, "fog", severity)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        C.apply(x * 255, "fog", 1)
    with pytest.raises(ValueError, match="CxHxW"):
        C.apply(x.transpose(1, 2, 0), "fog", 1)
    with pytest.raises(ValueError, match="float"):
        C.apply((x * 255).astype(np.uint8), "fog", 1)
    with pytest.raises(ValueError, match="profile 'imagenet-c'"):
        C.apply(x, "fog", 1, profile="imagenet-c")
    with pytest.raises(ValueError, match="non-negative"):
        C.apply(x, "fog", 1, seed=-1)
    with pytest.raises(ValueError, match="NaN"):
        C.apply(np.full_like(x, np.nan), "fog", 1)


# ------------------------------------------------------------------------------- parameters/profiles
def test_tables_match_the_original_scripts() -> None:
    P = C.SEVERITY_PARAMETERS
    # make_imagenet_c.py
    assert P["imagenet"]["gaussian_noise"] == [0.08, 0.12, 0.18, 0.26, 0.38]
    assert P["imagenet"]["shot_noise"] == [60, 25, 12, 5, 3]
    assert P["imagenet"]["glass_blur"][4] == (1.5, 4, 2)
    assert P["imagenet"]["defocus_blur"][0] == (3, 0.1)
    assert P["imagenet"]["motion_blur"][4] == (20, 15)
    assert P["imagenet"]["snow"][2] == (0.55, 0.3, 4, 0.9, 12, 8, 0.7)
    assert P["imagenet"]["frost"] == [(1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75)]
    assert P["imagenet"]["jpeg_compression"] == [25, 18, 15, 10, 7]
    assert P["imagenet"]["pixelate"] == [0.6, 0.5, 0.4, 0.3, 0.25]
    assert P["imagenet"]["saturate"][4] == (20, 0.2)
    assert P["imagenet"]["spatter"][4] == (0.67, 0.4, 1, 0.65, 1.5, 1)
    assert np.allclose(np.array(P["imagenet"]["elastic_transform"][0]) * 244, (244 * 2, 244 * 0.7, 244 * 0.1))
    # make_tinyimagenet_c.py
    assert P["tinyimagenet"]["gaussian_noise"] == [0.04, 0.08, 0.12, 0.15, 0.18]
    assert P["tinyimagenet"]["fog"][0] == (0.4, 3)
    assert P["tinyimagenet"]["saturate"][4] == (30, 0.2)
    assert P["tinyimagenet"]["jpeg_compression"] == [65, 58, 50, 40, 25]
    assert P["tinyimagenet"]["elastic_transform"][1] == (0.05, 0.3, 0.06)
    # make_cifar_c.py
    assert P["cifar"]["contrast"] == [0.75, 0.5, 0.4, 0.3, 0.15]
    assert P["cifar"]["shot_noise"] == [500, 250, 100, 75, 50]
    assert P["cifar"]["snow"][0] == (0.1, 0.2, 1, 0.6, 8, 3, 0.95)
    assert C.parameters("zoom_blur", 5, "imagenet") == (1, 1.31, 0.03)
    with pytest.raises(ValueError, match="concrete profile"):
        C.parameters("fog", 1, "auto")


def test_profile_follows_the_image_size() -> None:
    assert C.select_profile(224, 224) == "imagenet" and C.pixel_scale(224, 224, "imagenet") == 1.0
    assert C.select_profile(288, 384) == "imagenet"  # NYUv2
    assert C.select_profile(128, 256) == "imagenet"  # Cityscapes
    assert C.select_profile(64, 64) == "tinyimagenet" and C.pixel_scale(64, 64, "tinyimagenet") == 1.0
    assert C.select_profile(48, 64) == "tinyimagenet"  # NYUv2 stand-in
    assert C.select_profile(32, 64) == "tinyimagenet"  # Cityscapes stand-in: a tie, larger table wins
    assert C.select_profile(32, 32) == "cifar"
    assert math.isclose(C.pixel_scale(48, 64, "tinyimagenet"), math.sqrt(48 * 64) / 64)


def test_explicit_profile_uses_its_table() -> None:
    x = np.full((3, 32, 32), 0.5, dtype=np.float32)
    # contrast on a constant image is the identity; brightness adds the table value to V exactly
    for profile, expected in (("cifar", 0.05), ("tinyimagenet", 0.1), ("imagenet", 0.1)):
        y = C.apply(x, "brightness", 1, profile=profile)
        np.testing.assert_allclose(y, 0.5 + expected, atol=1e-6)


def test_pixel_parameters_scale_with_the_image() -> None:
    # the same gaussian_blur severity blurs twice as many pixels on an image twice as large
    small, large = np.zeros((3, 64, 64), np.float32), np.zeros((3, 128, 128), np.float32)
    small[:, 32, 32] = large[:, 64, 64] = 1.0
    ys = C.apply(small, "gaussian_blur", 5, profile="tinyimagenet")[0]
    yl = C.apply(large, "gaussian_blur", 5, profile="tinyimagenet")[0]
    ys_raw = C.apply(small, "gaussian_blur", 5, profile="tinyimagenet", rescale=False)[0]

    def spread(img: np.ndarray) -> float:
        r = np.arange(img.shape[0]) - img.shape[0] // 2
        return float(np.sqrt((img.sum(1) * r**2).sum() / img.sum()))

    assert spread(ys) == pytest.approx(1.5, rel=0.02)  # Tiny-ImageNet-C sigma at its own size
    assert spread(yl) == pytest.approx(3.0, rel=0.02)
    np.testing.assert_array_equal(ys, ys_raw)


# -------------------------------------------------------------------- semantics of each corruption
def _rng() -> np.random.Generator:
    return np.random.default_rng(0)


def test_noise_statistics_match_their_parameters() -> None:
    grey = np.full((64, 64, 3), 0.5)
    residual = F.gaussian_noise(grey, 0.08, _rng(), "imagenet", 1.0) - grey
    assert residual.std() == pytest.approx(0.08, rel=0.05) and abs(residual.mean()) < 0.005
    shot = F.shot_noise(grey, 60, _rng(), "imagenet", 1.0)
    assert shot.mean() == pytest.approx(0.5, abs=0.01)
    assert shot.var() == pytest.approx(0.5 / 60, rel=0.1)  # Poisson: var(k/c) = x/c
    assert np.allclose(shot * 60, np.round(shot * 60))
    impulse = F.impulse_noise(grey, 0.09, _rng(), "imagenet", 1.0)
    changed = impulse != 0.5
    assert changed.mean() == pytest.approx(0.09, abs=0.01)
    assert set(np.unique(impulse[changed])) <= {0.0, 1.0}
    assert (impulse[changed] == 1.0).mean() == pytest.approx(0.5, abs=0.05)
    speckle = F.speckle_noise(grey, 0.2, _rng(), "imagenet", 1.0) - grey
    assert speckle.std() == pytest.approx(0.5 * 0.2, rel=0.05)


def test_contrast_brightness_saturate_formulas() -> None:
    x = np.transpose(IMAGES[(32, 32)], (1, 2, 0)).astype(np.float64)
    means = x.mean(axis=(0, 1))
    np.testing.assert_allclose(F.contrast(x, 0.3, _rng(), "imagenet", 1.0), np.clip((x - means) * 0.3 + means, 0, 1))
    np.testing.assert_allclose(ops.hsv_to_rgb(ops.rgb_to_hsv(x)), x, atol=1e-12)
    hsv = ops.rgb_to_hsv(np.array([[[1.0, 0.5, 0.0], [0.2, 0.2, 0.2], [0.0, 0.0, 1.0]]]))
    np.testing.assert_allclose(hsv[0, 0], [30 / 360, 1.0, 1.0])
    np.testing.assert_allclose(hsv[0, 1], [0.0, 0.0, 0.2])  # greys: hue 0, saturation 0
    np.testing.assert_allclose(hsv[0, 2], [240 / 360, 1.0, 1.0])
    bright = F.brightness(x, 0.2, _rng(), "imagenet", 1.0)
    np.testing.assert_allclose(bright.max(axis=2), np.minimum(x.max(axis=2) + 0.2, 1.0), atol=1e-12)
    grey = np.full((4, 4, 3), 0.4)
    np.testing.assert_allclose(F.saturate(grey, (0.3, 0), _rng(), "imagenet", 1.0), grey)
    # as in scikit-image, a grey pixel's hue is 0 (red): adding saturation tints it red
    tinted = F.saturate(grey, (5, 0.1), _rng(), "imagenet", 1.0)
    np.testing.assert_allclose(tinted[0, 0], [0.4, 0.36, 0.36])


def test_gaussian_blur_is_scipy_gaussian_with_nearest_border() -> None:
    x = np.transpose(IMAGES[(32, 32)], (1, 2, 0)).astype(np.float64)
    expected = np.stack([ndimage.gaussian_filter(x[..., c], 2.0, mode="nearest") for c in range(3)], -1)
    np.testing.assert_allclose(F.gaussian_blur(x, 2.0, _rng(), "imagenet", 1.0), expected, atol=1e-12)


def test_defocus_disk_kernel_follows_the_original() -> None:
    k = ops.disk_kernel(3, 0.01)  # alias blur ~0: the 0/1 disk of radius 3 on the 17x17 grid
    assert k.shape == (17, 17) and k.sum() == pytest.approx(1.0)
    assert (k > 1e-9).sum() == 29  # lattice points with x^2 + y^2 <= 9
    k10 = ops.disk_kernel(10, 0.5)  # radius > 8: grid [-r, r] and a 5x5 anti-aliasing Gaussian
    assert k10.shape == (21, 21) and k10.sum() == pytest.approx(1.0, abs=0.02)
    # resampling keeps the blur continuous: at scale 0.87 a radius-1 disk still blurs
    shrunk = ops.resample_kernel(ops.disk_kernel(1, 0.1), 0.87)
    assert shrunk.sum() == pytest.approx(1.0) and shrunk.max() < 0.9
    assert ops.resample_kernel(k, 1.0) is k


def test_motion_blur_is_a_one_sided_gaussian_trail() -> None:
    img = np.zeros((9, 21))
    img[4, 15] = 1.0
    out = ops.motion_blur(img, radius=4, sigma=2.0, angle=0.0)  # ImageMagick: 9 taps along +x
    weights = np.exp(-(np.arange(9) ** 2) / 8.0)
    weights /= weights.sum()
    assert np.allclose(out[[0, 1, 2, 3, 5, 6, 7, 8]], 0)
    np.testing.assert_allclose(out[4, 15 - np.arange(9)], weights)  # out[x] = sum_i w_i img[x + i]
    vertical = ops.motion_blur(img.T.copy(), radius=4, sigma=2.0, angle=90.0)
    np.testing.assert_allclose(vertical, out.T, atol=1e-12)


def test_zoom_blur_keeps_constant_images_and_shapes() -> None:
    x = np.full((30, 50, 3), 0.7)
    y = F.zoom_blur(x, (1, 1.26, 0.02), _rng(), "imagenet", 1.0)
    assert y.shape == x.shape
    np.testing.assert_allclose(y, 0.7)
    z = ops.clipped_zoom(np.arange(30 * 50, dtype=np.float64).reshape(30, 50, 1), 1.2)
    assert z.shape == (30, 50, 1)


def test_glass_blur_shuffle_is_a_local_permutation() -> None:
    perm = F._glass_permutation(20, 24, 2, 2, _rng())
    assert np.array_equal(np.sort(perm), np.arange(20 * 24))
    assert (perm != np.arange(20 * 24)).mean() > 0.5


def test_pixelate_gives_constant_blocks_and_jpeg_is_pil() -> None:
    x = np.transpose(_scene_image(64, 64), (1, 2, 0)).astype(np.float64)
    y = F.pixelate(x, 0.5, _rng(), "tinyimagenet", 1.0)
    blocks = y.reshape(32, 2, 32, 2, 3)
    np.testing.assert_allclose(blocks, np.broadcast_to(blocks[:, :1, :, :1], blocks.shape), atol=1e-6)
    np.testing.assert_allclose(blocks[:, 0, :, 0], x.reshape(32, 2, 32, 2, 3).mean(axis=(1, 3)), atol=1e-5)
    buffer = io.BytesIO()
    Image.fromarray(np.round(x * 255).astype(np.uint8)).save(buffer, "JPEG", quality=25)
    buffer.seek(0)
    np.testing.assert_array_equal(
        F.jpeg_compression(x, 25, _rng(), "tinyimagenet", 1.0), np.asarray(Image.open(buffer)) / 255.0
    )


def test_fog_adds_a_plasma_fractal() -> None:
    fractal = ops.plasma_fractal(_rng(), 64, 2.0)
    assert fractal.shape == (64, 64) and fractal.min() == 0.0 and fractal.max() == 1.0
    # smooth: neighbouring values differ much less than the range
    assert np.abs(np.diff(fractal, axis=0)).mean() < 0.1
    with pytest.raises(ValueError, match="power of two"):
        ops.plasma_fractal(_rng(), 48, 2.0)
    x = np.full((32, 32, 3), 0.5)
    y = F.fog(x, (1.5, 2), _rng(), "imagenet", 1.0)
    assert (y >= 0.5 * 0.5 / 2.0 - 1e-9).all() and y.std() > 0.01  # (x + c f) * max / (max + c), f >= 0


def test_frost_texture_has_the_statistics_of_its_photograph() -> None:
    from mtl_data.corruptions.frost_texture import FROST_STYLES, frost_texture

    for style, spec in enumerate(FROST_STYLES):
        tex = frost_texture((96, 128), style, 1.0, _rng()) * 255
        np.testing.assert_allclose(tex.mean(axis=(0, 1)), spec.mean_rgb, atol=6)
        np.testing.assert_allclose(tex.std(axis=(0, 1)), spec.std_rgb, rtol=0.25)
    with pytest.raises(ValueError, match="style"):
        frost_texture((8, 8), 5, 1.0, _rng())


def test_equalize_hist_and_canny_follow_opencv() -> None:
    img = np.array([[0, 0, 10, 10], [10, 20, 20, 255]], dtype=np.uint8)
    # hist: 0:2, 10:3, 20:2, 255:1; lut[v] = round(255 * (cdf(v) - cdf(0)) / (8 - 2))
    expected = np.array([[0, 0, 128, 128], [128, 212, 212, 255]], dtype=np.uint8)
    np.testing.assert_array_equal(ops.equalize_hist(img), expected)
    step = np.zeros((12, 12), dtype=np.uint8)
    step[:, 6:] = 200
    edges = ops.canny(step, 50, 150)
    assert edges.any() and set(np.flatnonzero(edges.any(axis=0))) <= {5, 6}
    assert not ops.canny(np.full((8, 8), 90, np.uint8), 50, 150).any()
    # 5x5 chamfer distance (weights 1, 1.4, 2.1969) to a single zero pixel, as cv2.distanceTransform
    img = np.full((9, 9), 255.0)
    img[4, 4] = 0
    expected = np.array(
        [
            [0, 1, 2, 3, 4],
            [1, 1.4, 2.1969, 3.1969, 4.1969],
            [2, 2.1969, 2.8, 3.5969, 4.3938],
            [3, 3.1969, 3.5969, 4.2, 4.9969],
            [4, 4.1969, 4.3938, 4.9969, 5.6],
        ]
    )
    dist = ops.distance_to_zero(img)
    assert dist.dtype == np.float32
    np.testing.assert_allclose(dist[4:, 4:], expected, atol=1e-4)
    np.testing.assert_allclose(dist, dist[::-1, ::-1], atol=1e-6)  # symmetric around the zero
    assert np.isinf(ops.distance_to_zero(np.ones((3, 3)))).all()


def test_spatter_mud_and_water_branches() -> None:
    x = np.full((64, 64, 3), 0.5)
    mud = F.spatter(x, (0.65, 0.3, 1, 0.65, 1.5, 1), _rng(), "imagenet", 1.0)
    stained = np.any(mud != 0.5, axis=2)
    assert 0 < stained.mean() < 0.5
    # stained pixels are x (1 - m) + mud m with one mask value m in [0.8, 1] for all channels
    m = (mud[stained] - 0.5) / (np.array([63, 42, 20]) / 255 - 0.5)
    np.testing.assert_allclose(m, np.broadcast_to(m[:, :1], m.shape), atol=1e-9)
    assert m.min() >= 0.8 - 1e-9 and m.max() <= 1 + 1e-9
    water = F.spatter(x, (0.65, 0.3, 4, 0.69, 0.6, 0), _rng(), "imagenet", 1.0)
    assert (water >= 0.5 - 1e-12).all() and (water > 0.5).any()  # drops only add light


def test_elastic_moves_pixels_smoothly() -> None:
    x = np.transpose(_scene_image(64, 64), (1, 2, 0)).astype(np.float64)
    y = F.elastic_transform(x, (0.1, 0.08, 0.06), _rng(), "tinyimagenet", 1.0)
    assert y.shape == x.shape and np.abs(y - x).mean() > 0.005
    # the mean colour is roughly preserved (a warp, not a colour change)
    np.testing.assert_allclose(y.mean(axis=(0, 1)), x.mean(axis=(0, 1)), atol=0.05)
