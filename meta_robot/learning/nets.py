"""Network pieces shared by the learned components: the image encoder, its augmentation, the device.

Images enter every model the same way (uint8 RGB at a fixed size, encoded by a small CNN that keeps
where things are), so the classifier and the policies share these rather than each growing a copy.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812


def random_shift(images: torch.Tensor, pad: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """DrQ-style augmentation: pad by ``pad`` pixels (edge replicated) and crop back at a random offset
    per image. ``images`` is (B, C, H, W) float; offsets are drawn on the CPU from ``generator`` so a
    seed gives the same shifts on every device."""
    if pad == 0:
        return images
    b, _, h, w = images.shape
    padded = F.pad(images, (pad, pad, pad, pad), mode="replicate")
    offsets = torch.randint(0, 2 * pad + 1, (b, 2), generator=generator).to(images.device)
    rows = torch.arange(h, device=images.device)[None, :] + offsets[:, :1]  # (B, H)
    cols = torch.arange(w, device=images.device)[None, :] + offsets[:, 1:]  # (B, W)
    batch = torch.arange(b, device=images.device)[:, None, None]
    # Advanced indexing around the channel slice yields (B, H, W, C).
    return padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


class SpatialSoftmax(nn.Module):
    """Per channel, the expected image coordinates under a softmax over the feature map (Levine et
    al. 2016): a map of C channels becomes 2C keypoint coordinates in [-1, 1]."""

    def __init__(self) -> None:
        super().__init__()
        self.log_temperature = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        weights = torch.softmax(x.flatten(2) / self.log_temperature.exp(), dim=-1).view(b, c, h, w)
        ys = torch.linspace(-1.0, 1.0, h, device=x.device)
        xs = torch.linspace(-1.0, 1.0, w, device=x.device)
        return torch.cat([(weights.sum(3) * ys).sum(2), (weights.sum(2) * xs).sum(2)], dim=1)


class ConvEncoder(nn.Module):
    """Four 3x3 convolutions (three with stride 2), then a linear layer over either the flattened map
    or its spatial-softmax keypoints. Both keep *where* things are (a drawer handle's position says
    how far it is open); keypoints generalise better to unseen object positions from few
    demonstrations, which is what behaviour cloning needs."""

    def __init__(
        self, image_size: tuple[int, int], channels: int, feature_dim: int, pooling: str = "flatten"
    ) -> None:
        super().__init__()
        if pooling not in ("flatten", "spatial_softmax"):
            raise ValueError(f"pooling must be 'flatten' or 'spatial_softmax', got {pooling!r}")
        c = channels
        self.conv = nn.Sequential(
            nn.Conv2d(3, c, 3, stride=2, padding=1),
            nn.GroupNorm(8 if c % 8 == 0 else 1, c),
            nn.ReLU(inplace=True),
            nn.Conv2d(c, c, 3, stride=2, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(c, 2 * c, 3, stride=2, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(2 * c, 2 * c, 3, stride=1, padding=1),
            nn.ReLU(inplace=True),
        )
        h, w = image_size
        for _ in range(3):
            h, w = (h + 1) // 2, (w + 1) // 2
        if pooling == "flatten":
            self.pool: nn.Module = nn.Flatten(1)
            width = 2 * c * h * w
        else:
            self.pool = SpatialSoftmax()
            width = 2 * 2 * c
        self.project = nn.Sequential(nn.Linear(width, feature_dim), nn.LayerNorm(feature_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(self.pool(self.conv(x)))


def select_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` if given, else CUDA when present, else the CPU."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
