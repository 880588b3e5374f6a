"""The SRM's data: (render, real crop) pairs made by trained HOGS (or 3DGS) models of every group.

For each group the trained model (``data/models/hogs/<group with / as _>/<kind>/model.safetensors``,
written by the hogs stage) renders every training and held-out crop of ``hogsa.data.groups.load_group``
once, at the crop's camera (``hogsa.data.crops``) and at its frame's corrected poses
(``hogsa.hogs.poses``: learned for the training frames, fitted for the held-out ones, as the hogs stage
evaluates), over the same black background as the crops; HOGS is frozen, so the renders are computed
once and kept in memory for all SRM steps. One SRM is trained on the pairs of all groups (paper §3.4).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor
from tqdm.auto import tqdm

from hogsa.data.dataset import DatasetIndex
from hogsa.data.groups import GroupData, Sample, load_group
from hogsa.hand import HandModel
from hogsa.hogs.evaluate import corrected_group
from hogsa.hogs.model import GaussianScene
from hogsa.hogs.train import CHECKPOINT, KINDS, HOGSConfig, Kind, load_trained


@dataclass(frozen=True, eq=False)
class RenderPairs:
    """N renders with their targets (crops of the real frames); ``groups[i]`` names pair i's group."""

    rgb: Tensor  # [N, 3, S, S] render in [0, 1]
    alpha: Tensor  # [N, 1, S, S] render opacity
    target: Tensor  # [N, 3, S, S] real crop in [0, 1], black background
    groups: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.groups)

    def take(self, indices: list[int]) -> RenderPairs:
        return RenderPairs(self.rgb[indices], self.alpha[indices], self.target[indices],
                           tuple(self.groups[i] for i in indices))

    @staticmethod
    def cat(parts: list[RenderPairs]) -> RenderPairs:
        return RenderPairs(torch.cat([p.rgb for p in parts]), torch.cat([p.alpha for p in parts]),
                           torch.cat([p.target for p in parts]), tuple(g for p in parts for g in p.groups))

    def digest(self) -> str:
        """SHA-1 of the tensors' bytes: what a checkpoint remembers of the data it was trained on."""
        sha = hashlib.sha1()
        for tensor in (self.rgb, self.alpha, self.target):
            sha.update(tensor.contiguous().numpy().tobytes())
        return sha.hexdigest()


def model_path(models_dir: str | Path, group: str, kind: Kind) -> Path:
    """Where the hogs stage writes the ``kind`` model of ``group``."""
    return Path(models_dir) / group.replace("/", "_") / kind / CHECKPOINT


@torch.no_grad()
def render_pairs(model: GaussianScene, samples: list[Sample], group: str) -> RenderPairs:
    """``model``'s render of each sample, paired with the sample's image."""
    if not samples:
        raise ValueError(f"group {group}: no crops to render (check hogs.held_out_views / held_out_every)")
    rgb, alpha = [], []
    for sample in tqdm(samples, desc=f"renders {group}", leave=False):
        out = model.render(sample.camera, sample.right, sample.left, sample.obj)
        rgb.append(out.rgb.clamp(0, 1))
        alpha.append(out.alpha[None].clamp(0, 1))
    return RenderPairs(torch.stack(rgb), torch.stack(alpha), torch.stack([s.image for s in samples]),
                       (group,) * len(samples))


def group_pairs(kind: Kind, cfg: HOGSConfig, data: GroupData, models_dir: str | Path,
                seed: int) -> tuple[RenderPairs, RenderPairs]:
    """(training pairs, held-out pairs) of one group rendered by its trained ``kind`` model (as the hogs
    stage wrote it in ``models_dir``), at the corrected poses."""
    model, poses = load_trained(cfg, data, kind, model_path(models_dir, data.name, kind), seed)
    data = corrected_group(data, poses)
    return render_pairs(model, data.train, data.name), render_pairs(model, data.held_out, data.name)


def all_pairs(cfg: HOGSConfig, index: DatasetIndex, hands: dict[str, HandModel], groups: list[str],
              models_dir: str | Path, seed: int) -> dict[str, tuple[RenderPairs, RenderPairs]]:
    """Per kind of ``KINDS``: (training pairs, held-out pairs) of all ``groups`` (each group's crops read once)."""
    parts: dict[str, tuple[list[RenderPairs], list[RenderPairs]]] = {kind: ([], []) for kind in KINDS}
    for group in groups:
        data = load_group(cfg, index, hands, group)
        for kind in KINDS:
            train, held_out = group_pairs(kind, cfg, data, models_dir, seed)
            parts[kind][0].append(train)
            parts[kind][1].append(held_out)
    return {kind: (RenderPairs.cat(train), RenderPairs.cat(held_out)) for kind, (train, held_out) in parts.items()}
