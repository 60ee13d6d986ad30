"""AlexNet's ImageNet-C top-1 error rates, the denominators of the corruption error (CE / mCE).

Source: Hendrycks & Dietterich, "Benchmarking Neural Network Robustness to Common Corruptions and
Perturbations", ICLR 2019 (repository hendrycks/robustness).  Each value is AlexNet's top-1 error
averaged over the five severities, as tabulated in ``ALEXNET_ERR`` of google-research/augmix
``imagenet.py`` ("Raw AlexNet errors taken from https://github.com/hendrycks/robustness").
"""

from __future__ import annotations

ALEXNET_ERRORS: dict[str, float] = {
    "gaussian_noise": 0.886428,
    "shot_noise": 0.894468,
    "impulse_noise": 0.922640,
    "defocus_blur": 0.819880,
    "glass_blur": 0.826268,
    "motion_blur": 0.785948,
    "zoom_blur": 0.798360,
    "snow": 0.866816,
    "frost": 0.826572,
    "fog": 0.819324,
    "brightness": 0.564592,
    "contrast": 0.853204,
    "elastic_transform": 0.646056,
    "pixelate": 0.717840,
    "jpeg_compression": 0.606500,
}

CORRUPTIONS: tuple[str, ...] = tuple(ALEXNET_ERRORS)
SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)
