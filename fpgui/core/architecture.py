"""The fingerprint network, defined once: the app loads it, ``model_training`` trains it.

A ResNet-18 trunk on a single grey channel, global average pooling, then a Dense-128 head with no
activation (the published design). Embeddings are optionally L2-normalised so that the verdict
threshold lives on a fixed scale: distances are in [0, 2].
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models import resnet18

ARCHITECTURE_NAME = "resnet18-gray-dense"


class FingerprintNet(nn.Module):
    """Maps ``(N, C, H, W)`` normalised float images to ``(N, embedding_dim)`` embeddings."""

    def __init__(
        self, embedding_dim: int = 128, in_channels: int = 1, l2_normalize: bool = True
    ) -> None:
        super().__init__()
        trunk = resnet18(weights=None)
        trunk.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        trunk.fc = nn.Identity()
        self.trunk = trunk
        self.head = nn.Linear(512, embedding_dim)
        self.embedding_dim = embedding_dim
        self.in_channels = in_channels
        self.l2_normalize = l2_normalize

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``images``: (N, C, H, W) float; returns (N, D) float32, unit length if normalising."""
        features = self.trunk(images)
        embeddings: torch.Tensor = self.head(features).float()
        if self.l2_normalize:
            embeddings = nn.functional.normalize(embeddings, p=2.0, dim=1)
        return embeddings
