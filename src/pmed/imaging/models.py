"""Networks: a ResNet-18 (MONAI) and a compact CNN, both ``backbone → features → head``.

Both take ``(N, C, H, W)`` images in ``[0, 1]``, standardise them with the training set's mean
and standard deviation (kept as buffers, so a saved model carries its own preprocessing), and
expose :meth:`ImageNet.features` (the penultimate layer, used as the patient embedding) and
:attr:`ImageNet.cam_layer` (the last convolutional stage, for Grad-CAM).
"""

from __future__ import annotations

from pmed.errors import OptionError, require

torch = require("torch", extra="imaging", feature="pmed.imaging's networks")
nn = torch.nn

__all__ = ["ARCHITECTURES", "ImageNet", "build_model", "pick_device"]

#: architecture name → short description
ARCHITECTURES = {
    "resnet18": "MONAI ResNet-18 (basic blocks 2-2-2-2), 3×3 stride-1 stem for small images",
    "cnn": "compact CNN: 3 double-conv blocks (16-32-64 channels) with max-pooling, global average pool",
}


def pick_device(device: str | None = None) -> torch.device:
    """``device`` when given, else CUDA when available, else CPU."""
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _conv_block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )


class _CompactCNN(nn.Module):
    def __init__(self, in_channels: int, width: float = 1.0) -> None:
        super().__init__()
        c = [max(4, round(16 * width)), max(8, round(32 * width)), max(16, round(64 * width))]
        self.block1 = _conv_block(in_channels, c[0])
        self.pool1 = nn.MaxPool2d(2)
        self.block2 = _conv_block(c[0], c[1])
        self.pool2 = nn.MaxPool2d(2)
        self.block3 = _conv_block(c[1], c[2])
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.out_features = c[2]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.block1(x))
        x = self.pool2(self.block2(x))
        x = self.block3(x)
        return torch.flatten(self.pool(x), 1)


class ImageNet(nn.Module):
    """Classifier ``head(features(x))`` with built-in intensity standardisation.

    Parameters
    ----------
    arch
        ``"resnet18"`` or ``"cnn"`` (:data:`ARCHITECTURES`).
    in_channels, n_classes
        Image channels and number of classes.
    width
        Channel multiplier (1.0 = the published widths).
    mean, std
        Per-channel intensity mean and SD of the training images.
    dropout
        Dropout before the final layer.
    """

    def __init__(self, arch: str = "resnet18", *, in_channels: int = 1, n_classes: int = 2, width: float = 1.0,
                 mean: list[float] | None = None, std: list[float] | None = None, dropout: float = 0.2) -> None:
        super().__init__()
        self.arch = arch
        mean = mean or [0.5] * in_channels
        std = std or [0.25] * in_channels
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))
        if arch == "resnet18":
            require("monai", extra="imaging", feature="the ResNet-18 network")
            from monai.networks.nets import ResNet

            planes = [max(8, round(p * width)) for p in (64, 128, 256, 512)]
            self.backbone = ResNet("basic", [2, 2, 2, 2], planes, spatial_dims=2, n_input_channels=in_channels,
                                   conv1_t_size=3, conv1_t_stride=1, no_max_pool=False, feed_forward=False)
            n_feat = planes[-1]
            self.cam_layer = "backbone.layer4"
        elif arch == "cnn":
            self.backbone = _CompactCNN(in_channels, width)
            n_feat = self.backbone.out_features
            self.cam_layer = "backbone.block3"
        else:
            raise OptionError(f"unknown architecture {arch!r}", fix=f"choose one of: {', '.join(ARCHITECTURES)}")
        self.n_features = n_feat
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(n_feat, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate-layer activations ``(N, n_features)``."""
        return self.backbone((x - self.mean) / self.std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``(N, n_classes)``."""
        return self.head(self.drop(self.features(x)))


def build_model(arch: str = "resnet18", *, in_channels: int = 1, n_classes: int = 2, width: float = 1.0,
                mean: list[float] | None = None, std: list[float] | None = None,
                dropout: float = 0.2) -> ImageNet:
    """Make an :class:`ImageNet` (see there for the parameters)."""
    return ImageNet(arch, in_channels=in_channels, n_classes=n_classes, width=width, mean=mean, std=std,
                    dropout=dropout)


