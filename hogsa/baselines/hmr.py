"""HMR regression heads (Kanazawa et al.) as ARCTIC's baselines use them, and their camera model.

``HMRHead(feat_dim, specs)`` regresses named vectors (``specs``: name → width) from an image feature
[B, feat_dim] by ``iterations`` residual refinements of an MLP (feat_dim + Σ widths → hidden → hidden,
ReLU and dropout; ARCTIC's hidden is 1024) starting from fixed initial values, except the
weak-perspective camera ``cam`` whose initial value a second MLP (hidden / 2 wide) predicts (returned
too: ARCTIC supervises it). Decoder weights start
near zero (Xavier, gain 0.01) and biases at PyTorch's default (|b| ≤ 1/32), as ARCTIC's, so an
untrained head stays within about 0.1 of its initial values.

Rotations: the network outputs 6D (``hogsa.geometry.rotation_6d_to_matrix``). The weak-perspective camera [s, tx, ty] of a ``crop_size`` crop with focal
length f (pixels) is the translation [tx, ty, 2f / (crop_size · s)] (ARCTIC's, with s ≥ 0.1).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

MIN_SCALE = 0.1  # ARCTIC's lower bound on the weak-perspective scale
HIDDEN = 1024  # ARCTIC's refinement width


def weak_perspective_to_translation(cam: Tensor, focal: Tensor, crop_size: int) -> Tensor:
    """[B, 3] [s, tx, ty], [B] focal length (pixels) → [B, 3] camera-frame translation (metres)."""
    s = cam[:, 0].clamp(min=MIN_SCALE)
    return torch.stack((cam[:, 1], cam[:, 2], 2 * focal / (crop_size * s + 1e-9)), dim=-1)


def translation_to_weak_perspective(transl: Tensor, focal: Tensor, crop_size: int) -> Tensor:
    """[B, 3] camera-frame translation, [B] focal (pixels) → [B, 3] [s, tx, ty]: the inverse of
    ``weak_perspective_to_translation`` (for scales above its bound)."""
    return torch.stack((2 * focal / (crop_size * transl[:, 2]), transl[:, 0], transl[:, 1]), dim=-1)


class HMRHead(nn.Module):
    """Iterative regression of ``specs`` vectors (plus ``cam``, [s, tx, ty]) from [B, feat_dim]."""

    def __init__(self, feat_dim: int, specs: dict[str, Tensor], iterations: int = 3, hidden: int = HIDDEN):
        super().__init__()
        for name, value in specs.items():
            self.register_buffer(f"init_{name}", value.reshape(1, -1).float().clone(), persistent=False)
        self.names = [*specs, "cam"]
        widths = [specs[name].numel() for name in specs] + [3]
        self.iterations = iterations
        self.refine = nn.Sequential(
            nn.Linear(feat_dim + sum(widths), hidden), nn.ReLU(), nn.Dropout(),
            nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(),
        )
        self.decoders = nn.ModuleDict({name: nn.Linear(hidden, width) for name, width in zip(self.names, widths)})
        for decoder in self.decoders.values():
            nn.init.xavier_uniform_(decoder.weight, gain=0.01)
        self.cam_init = nn.Sequential(nn.Linear(feat_dim, hidden // 2), nn.ReLU(), nn.Linear(hidden // 2, hidden // 2),
                                      nn.ReLU(), nn.Linear(hidden // 2, 3))

    def forward(self, features: Tensor) -> tuple[dict[str, Tensor], Tensor]:
        """[B, feat_dim] → ({name: [B, width]} refined, including ``cam``; the initial ``cam`` [B, 3])."""
        batch = features.shape[0]
        cam_init = self.cam_init(features)
        values = {name: getattr(self, f"init_{name}").expand(batch, -1) for name in self.names[:-1]}
        values["cam"] = cam_init
        for _ in range(self.iterations):
            hidden = self.refine(torch.cat([features, *(values[name] for name in self.names)], dim=1))
            values = {name: values[name] + self.decoders[name](hidden) for name in self.names}
        return values, cam_init
