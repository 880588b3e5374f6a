"""InterField-SF (ARCTIC, CVPR 2023): one image crop → the interaction field, per vertex the distance to
the other entity (hand → object ``ro``, ``lo``; object → hand ``or``, ``ol``), clamped at 0.1 m.

The backbone feature [B, C] is reduced (C → width → width; ARCTIC's width is 512) and tiled onto
template points: each hand's canonical template subsampled to ``hand_points`` vertices and the
object's to ``object_points`` (farthest-point sampling, so the points cover the surface). A PointNet
(per-point 1×1 convolutions of ``width`` channels, a max-pooled global feature appended to each
point's) feeds four per-point regression heads, and learned linear maps upsample the predictions to
every vertex: ``hand_vertices`` per hand, ``object_vertices``
(the largest object's count; smaller objects use the first entries) for the object, as ARCTIC does.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from hogsa.baselines.backbone import ResNet

FIELD_CLAMP = 0.1  # m: ARCTIC's interaction-field bound
CLAMPED_WEIGHT = 0.1  # loss weight of entries at the bound (most of them: far vertices)
FIELD_WEIGHT = 100.0
WIDTH = 512  # ARCTIC's feature and PointNet channels


class FieldPrediction(NamedTuple):
    dist_ro: Tensor  # [B, Vh] metres, right hand → object
    dist_lo: Tensor  # [B, Vh] left hand → object
    dist_or: Tensor  # [B, Vo] object → right hand (the first V of the object's vertices are its own)
    dist_ol: Tensor  # [B, Vo] object → left hand


def farthest_points(vertices: Tensor, count: int) -> Tensor:
    """[V, 3] → LongTensor [min(count, V)]: greedy farthest-point sampling from vertex 0 (deterministic)."""
    count = min(count, vertices.shape[0])
    chosen = torch.zeros(count, dtype=torch.int64)
    nearest = torch.linalg.vector_norm(vertices - vertices[0], dim=1)
    for k in range(1, count):
        chosen[k] = torch.argmax(nearest)
        nearest = torch.minimum(nearest, torch.linalg.vector_norm(vertices - vertices[chosen[k]], dim=1))
    return chosen


class PointNet(nn.Module):
    """Per-point features [B, 2 · width, N]: the global max-pooled feature, then each point's own."""

    def __init__(self, in_dim: int, width: int = WIDTH):
        super().__init__()
        self.shallow = nn.Sequential(nn.Conv1d(in_dim, width, 1), nn.BatchNorm1d(width))
        self.base = nn.Sequential(nn.Conv1d(width, width, 1), nn.BatchNorm1d(width), nn.ReLU(),
                                  nn.Conv1d(width, width, 1), nn.BatchNorm1d(width))
        self.out_dim = 2 * width

    def forward(self, x: Tensor) -> Tensor:  # [B, in_dim, N] -> [B, out_dim, N]
        point = self.shallow(x)
        pooled = self.base(point).max(dim=2, keepdim=True).values
        return torch.cat((pooled.expand(-1, -1, x.shape[2]), point), dim=1)


def regress_head(in_dim: int, width: int = WIDTH) -> nn.Sequential:
    return nn.Sequential(nn.Conv1d(in_dim, width, 1), nn.BatchNorm1d(width), nn.ReLU(),
                         nn.Conv1d(width, width // 4, 1), nn.BatchNorm1d(width // 4), nn.ReLU(),
                         nn.Conv1d(width // 4, 1, 1))


class InterFieldSF(nn.Module):
    """``forward(images [B,3,H,W], object_points [B, object_points, 3])`` → FieldPrediction; the hand
    templates' subsampled points [hand_points, 3] per side are fixed at construction."""

    def __init__(self, backbone: ResNet, hand_points: dict[str, Tensor], hand_vertices: int, object_points: int,
                 object_vertices: int, width: int = WIDTH):
        super().__init__()
        self.backbone = backbone
        self.down = nn.Sequential(nn.Linear(backbone.out_features, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU())
        self.register_buffer("points_r", hand_points["right"].float().T.contiguous())  # [3, Nh]
        self.register_buffer("points_l", hand_points["left"].float().T.contiguous())
        self.object_points = object_points
        self.pointnet = PointNet(3 + width, width)
        self.heads = nn.ModuleDict({key: regress_head(self.pointnet.out_dim, width)
                                    for key in ("ro", "lo", "or", "ol")})
        count = hand_points["right"].shape[0]
        self.upsample_r = nn.Linear(count, hand_vertices)
        self.upsample_l = nn.Linear(count, hand_vertices)
        self.upsample_o = nn.Linear(object_points, object_vertices)

    def forward(self, images: Tensor, object_points: Tensor) -> FieldPrediction:
        batch = images.shape[0]
        if object_points.shape[1:] != (self.object_points, 3):
            raise ValueError(f"object_points must be [B, {self.object_points}, 3], got {tuple(object_points.shape)}")
        feature = self.down(self.backbone(images))  # [B, 512]
        points = torch.cat((self.points_r.expand(batch, -1, -1), self.points_l.expand(batch, -1, -1),
                            object_points.transpose(1, 2)), dim=2)  # [B, 3, N]
        x = self.pointnet(torch.cat((points, feature[:, :, None].expand(-1, -1, points.shape[2])), dim=1))
        nh = self.points_r.shape[1]
        hand_r, hand_l, obj = torch.split(x, [nh, nh, object_points.shape[1]], dim=2)
        return FieldPrediction(
            self.upsample_r(self.heads["ro"](hand_r)[:, 0]), self.upsample_l(self.heads["lo"](hand_l)[:, 0]),
            self.upsample_o(self.heads["or"](obj)[:, 0]), self.upsample_o(self.heads["ol"](obj)[:, 0]))


def field_loss(pred: Tensor, gt: Tensor, weight: Tensor) -> Tensor:
    """ARCTIC's loss of one field: [B, V] x2 and a [B, V] 0/1 weight (frame validity × real vertex) →
    FIELD_WEIGHT × the mean squared error over all B·V entries, those at the clamp down-weighted."""
    squared = (pred - gt) ** 2 * weight
    squared = torch.where(gt == FIELD_CLAMP, squared * CLAMPED_WEIGHT, squared)
    return FIELD_WEIGHT * squared.mean()
