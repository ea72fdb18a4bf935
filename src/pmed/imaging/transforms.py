"""Seeded training-time augmentation built from MONAI array transforms.

Preprocessing that every split gets (resizing to one size, scaling to ``[0, 1]``) happens when
the data are loaded (:func:`pmed.imaging.readers.load_dataset`) and intensity standardisation
is part of the network (:class:`pmed.imaging.models.ImageNet`), so inference never forgets it.
:class:`Augmenter` holds what only the *training* split gets: random flips, small rotations,
random crops resized back, and intensity jitter (contrast, shift, noise). With the same seed it
produces the same images, run after run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["AugmentConfig", "Augmenter"]


@dataclass(frozen=True)
class AugmentConfig:
    """What the training augmentation does (probabilities per image).

    Attributes
    ----------
    flip_lr, flip_ud
        Probability of a left-right / up-down flip.
    rotate_deg, rotate_prob
        Maximum rotation angle (degrees, either way) and its probability.
    crop, crop_prob
        Fraction of each side kept by a random crop (then resized back) and its probability.
    contrast, shift, noise
        Gamma range ``1 ± contrast``, intensity offset ``± shift``, Gaussian noise SD; each
        applied with probability ``intensity_prob``.
    """

    flip_lr: float = 0.5
    flip_ud: float = 0.0
    rotate_deg: float = 10.0
    rotate_prob: float = 0.5
    crop: float = 0.9
    crop_prob: float = 0.5
    contrast: float = 0.2
    shift: float = 0.05
    noise: float = 0.02
    intensity_prob: float = 0.5

    def to_dict(self) -> dict:
        """Plain dict (for config.json)."""
        return asdict(self)


class Augmenter:
    """Random training augmentation of ``(N, C, H, W)`` batches, reproducible from a seed.

    Parameters
    ----------
    config
        The transforms and their probabilities (:class:`AugmentConfig`).
    seed
        Seed of the transforms' random state; :meth:`reseed` sets a new one (the trainer uses
        ``seed + epoch`` so that a resumed run draws what an uninterrupted one would).

    Examples
    --------
    >>> aug = Augmenter(seed=0)                                  # doctest: +SKIP
    >>> a = aug(x); aug.reseed(0); b = aug(x); (a == b).all()    # doctest: +SKIP
    True
    """

    def __init__(self, config: AugmentConfig | None = None, *, seed: int = 0) -> None:
        self.config = config or AugmentConfig()
        self._compose = None
        self._built_for: tuple[int, int] | None = None
        self.seed = seed

    def _build(self, shape: tuple[int, int]):
        from pmed.errors import require

        require("monai", extra="imaging", feature="augmentation")
        from monai.transforms import (
            Compose,
            Identity,
            OneOf,
            RandAdjustContrast,
            RandFlip,
            RandGaussianNoise,
            RandRotate,
            RandShiftIntensity,
            RandSpatialCrop,
            Resize,
        )

        c = self.config
        h, w = shape
        ts = []
        if c.crop_prob > 0 and c.crop < 1:
            crop = Compose([RandSpatialCrop((max(1, round(h * c.crop)), max(1, round(w * c.crop))),
                                            random_size=False),
                            Resize((h, w), mode="bilinear")])
            ts.append(OneOf([crop, Identity()], weights=[c.crop_prob, 1 - c.crop_prob]))
        if c.flip_lr > 0:
            ts.append(RandFlip(prob=c.flip_lr, spatial_axis=1))
        if c.flip_ud > 0:
            ts.append(RandFlip(prob=c.flip_ud, spatial_axis=0))
        if c.rotate_deg > 0 and c.rotate_prob > 0:
            r = float(np.deg2rad(c.rotate_deg))
            ts.append(RandRotate(range_x=r, prob=c.rotate_prob, padding_mode="border"))
        if c.contrast > 0:
            ts.append(RandAdjustContrast(prob=c.intensity_prob, gamma=(1 - c.contrast, 1 + c.contrast)))
        if c.shift > 0:
            ts.append(RandShiftIntensity(offsets=c.shift, prob=c.intensity_prob))
        if c.noise > 0:
            ts.append(RandGaussianNoise(prob=c.intensity_prob, std=c.noise))
        self._compose = Compose(ts)
        self._built_for = shape
        self.reseed(self.seed)

    def reseed(self, seed: int) -> Augmenter:
        """Reset the random state of every transform from ``seed``; returns self."""
        self.seed = int(seed)
        if self._compose is not None:
            self._compose.set_random_state(seed=self.seed % (2**32))
        return self

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """Augment each image of a ``(N, C, H, W)`` float array independently."""
        x = np.asarray(batch, dtype=np.float32)
        if x.ndim != 4:
            from pmed.errors import InputError

            raise InputError(f"expected a (N, C, H, W) batch of images, got shape {x.shape}",
                             fix="stack 2-D images into one (N, C, H, W) array")
        if self._compose is None or self._built_for != x.shape[2:]:
            self._build(tuple(x.shape[2:]))
        out = np.empty_like(x)
        for i in range(len(x)):
            y = self._compose(x[i])
            y = y.as_tensor() if hasattr(y, "as_tensor") else y
            out[i] = np.asarray(y.detach().cpu().numpy() if hasattr(y, "detach") else y, dtype=np.float32)
        return np.clip(out, 0.0, 1.0)
