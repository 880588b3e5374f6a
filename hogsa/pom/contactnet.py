"""ContactNet: the contact map an object should have under a hand (GraspTTA's network, REFERENCES §8).

Two PointNet encoders (shared per-point MLP 3→64→128→1024 as 1×1 convolutions, max-pool): one over
the object points, one over the hand vertices. The two global codes are mixed by a linear layer into
one 1024-d code, appended to each object point's 64-d local feature, and a per-point MLP
1088→512→256→128→1 with a sigmoid gives each object point's contact probability. (GraspTTA runs one
PointNet over the union of both clouds with a part indicator; the two-encoder form here is the one
REFERENCES describes.) No normalisation layers: batches are small and the fit must not depend on
batch statistics.

Inputs are in the object's frame (its bottom part's canonical axes; the top part articulated),
metres, scaled by ``INPUT_SCALE`` inside the network. Training pairs come from the training split's
grasp frames, each hand separately: the hand's vertices, jittered by a random translation of up to
``jitter`` metres (so the net also answers for a hand slightly off its grasp, as the optimiser's
initial poses are), and the contact map of the unjittered hand as the target (binary cross-entropy).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file
from torch import Tensor, nn
from tqdm import tqdm

from hogsa.articulated import ArticulatedObject
from hogsa.code_identity import code_digest
from hogsa.data.schema import SIDES
from hogsa.geometry import axis_angle_to_matrix
from hogsa.hand import HandModel
from hogsa.io import save_safetensors
from hogsa.pom.contact import SurfaceSamples, object_contact_map
from hogsa.pom.grasps import Grasps

INPUT_SCALE = 10.0  # metres → decimetres: hand-object scenes span about one unit


@dataclass(frozen=True)
class ContactNetReportConfig:
    """params.yaml ``contactnet.report``: the stage's figure (hogsa.report.contactnet)."""

    dpi: int


@dataclass(frozen=True)
class ContactNetConfig:
    """params.yaml ``contactnet``."""

    object_points: int  # surface samples per object (GraspTTA: 3,000)
    hand_points: int  # hand vertices fed to the hand encoder (farthest-point subset of the template)
    global_features: int  # PointNet global code width (GraspTTA: 1024)
    epochs: int
    batch_size: int
    learning_rate: float  # Adam
    jitter: float  # m: training hands are moved by up to this much (target: the unmoved contact)
    contact_distance: float  # m: a frame is a grasp when each hand has a vertex this close to the object
    report: ContactNetReportConfig


class PointNetEncoder(nn.Module):
    """[B,N,3] → local features [B,64,N] and the max-pooled global code [B,G]."""

    def __init__(self, global_features: int):
        super().__init__()
        self.local = nn.Sequential(nn.Conv1d(3, 64, 1), nn.ReLU())
        self.deep = nn.Sequential(nn.Conv1d(64, 128, 1), nn.ReLU(), nn.Conv1d(128, global_features, 1))

    def forward(self, points: Tensor) -> tuple[Tensor, Tensor]:
        local = self.local(points.transpose(1, 2))
        return local, self.deep(local).max(dim=-1).values


class ContactNet(nn.Module):
    """``forward(object_points [B,N,3], hand_points [B,H,3])`` (object frame, m) → contact [B,N] in (0,1)."""

    def __init__(self, global_features: int = 1024):
        super().__init__()
        self.global_features = global_features
        self.object_encoder = PointNetEncoder(global_features)
        self.hand_encoder = PointNetEncoder(global_features)
        self.mix = nn.Sequential(nn.Linear(2 * global_features, global_features), nn.ReLU())
        widths = [global_features + 64, 512, 256, 128]
        layers: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [nn.Conv1d(a, b, 1), nn.ReLU()]
        self.head = nn.Sequential(*layers, nn.Conv1d(widths[-1], 1, 1))

    def logits(self, object_points: Tensor, hand_points: Tensor) -> Tensor:  # [B,N]
        local, object_code = self.object_encoder(object_points * INPUT_SCALE)
        _, hand_code = self.hand_encoder(hand_points * INPUT_SCALE)
        code = self.mix(torch.cat([object_code, hand_code], dim=-1))
        features = torch.cat([code[:, :, None].expand(-1, -1, local.shape[-1]), local], dim=1)
        return self.head(features)[:, 0]

    def forward(self, object_points: Tensor, hand_points: Tensor) -> Tensor:
        return torch.sigmoid(self.logits(object_points, hand_points))


def farthest_points(points: np.ndarray, count: int) -> np.ndarray:
    """[count] int64 indices of a farthest-point subset of [N,3] ``points`` (deterministic: starts at 0)."""
    count = min(count, len(points))
    chosen = np.zeros(count, dtype=np.int64)
    distance = np.full(len(points), np.inf)
    for k in range(1, count):
        distance = np.minimum(distance, np.linalg.norm(points - points[chosen[k - 1]], axis=1))
        chosen[k] = int(distance.argmax())
    return chosen


def to_object_frame(points: Tensor, object_rot: Tensor, object_transl: Tensor) -> Tensor:
    """[B,N,3] world points → the frame of objects at [B,3] axis-angle ``object_rot`` and [B,3]
    ``object_transl`` m (the inverse of x ↦ R x + t): [B,N,3]."""
    return torch.einsum("bji,bnj->bni", axis_angle_to_matrix(object_rot), points - object_transl[:, None])


class ContactExamples(NamedTuple):
    """Training or evaluation pairs, object frame (metres)."""

    object_points: Tensor  # [E,N,3]
    hand_points: Tensor  # [E,V,3] all hand vertices (the net takes a subset)
    target: Tensor  # [E,N] contact map of the hand on the object points


def contact_examples(grasps: Grasps, hands: dict[str, HandModel],
                     surfaces: dict[str, SurfaceSamples]) -> ContactExamples:
    """One pair per grasp and hand side: the object's surface samples and the hand in the object frame."""
    objects, hand_points, targets = [], [], []
    for name, surface in surfaces.items():
        chosen = grasps.take(grasps.object_name == name)
        if not len(chosen):
            continue
        object_pose = chosen.object_pose.torch()
        zeros = torch.zeros(len(chosen), 3)
        with torch.no_grad():
            points, _ = surface.pose(object_pose.articulation, zeros, zeros)
            for side in SIDES:
                verts = hands[side](*chosen.hands[side].torch()).vertices
                verts = to_object_frame(verts, object_pose.rot, object_pose.transl)
                objects.append(points)
                hand_points.append(verts)
                targets.append(object_contact_map(points, verts))
    return ContactExamples(torch.cat(objects), torch.cat(hand_points), torch.cat(targets))


def jittered(hand_points: Tensor, jitter: float, generator: torch.Generator) -> Tensor:
    """[E,V,3] hands each moved by a random direction times U[0, jitter] m."""
    direction = F.normalize(torch.randn(hand_points.shape[0], 3, generator=generator), dim=-1)
    length = torch.rand(hand_points.shape[0], 1, generator=generator) * jitter
    return hand_points + (direction * length)[:, None]


def train_contactnet(examples: ContactExamples, hand_subset: Tensor, cfg: ContactNetConfig,
                     seed: int) -> tuple[ContactNet, list[float]]:
    """Fit ContactNet (Adam, binary cross-entropy); returns the net and the per-epoch mean loss."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    net = ContactNet(cfg.global_features)
    optimizer = torch.optim.Adam(net.parameters(), lr=cfg.learning_rate)
    count = len(examples.target)
    curve = []
    for _ in tqdm(range(cfg.epochs), desc="contactnet"):
        order = torch.randperm(count, generator=generator)
        total = 0.0
        for start in range(0, count, cfg.batch_size):
            batch = order[start:start + cfg.batch_size]
            hands_in = jittered(examples.hand_points[batch][:, hand_subset], cfg.jitter, generator)
            loss = F.binary_cross_entropy_with_logits(net.logits(examples.object_points[batch], hands_in),
                                                      examples.target[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(batch)
        curve.append(total / count)
    return net.eval(), curve


@torch.no_grad()
def predict(net: ContactNet, object_points: Tensor, hand_points: Tensor, batch_size: int = 32) -> Tensor:
    """[E,N] contact probabilities in batches (inputs as ``ContactNet.forward``)."""
    return torch.cat([net(object_points[k:k + batch_size], hand_points[k:k + batch_size])
                      for k in range(0, len(object_points), batch_size)])


class ContactErrors(NamedTuple):
    """Mean absolute errors of predicted contact maps."""

    mae: float  # over all object points
    mae_contact_points: float  # over the points in contact (target > 0.5); NaN when there are none


def contact_errors(predicted: Tensor, target: Tensor) -> ContactErrors:
    """[E,N] predicted and target contact maps → their mean absolute errors."""
    touching = target > 0.5
    return ContactErrors(float((predicted - target).abs().mean()),
                         float((predicted - target).abs()[touching].mean()) if touching.any() else float("nan"))


def save_contactnet(net: ContactNet, hand_subset: Tensor, cfg: ContactNetConfig, path: str | Path) -> None:
    """Weights and the hand-vertex subset in safetensors; the training config (without ``report``) and the
    code digest in its metadata (atomic write)."""
    tensors = {k: v.contiguous() for k, v in net.state_dict().items()} | {"hand_subset": hand_subset}
    training = {k: v for k, v in asdict(cfg).items() if k != "report"}
    save_safetensors(tensors, path, {"config": json.dumps(training), "code": code_digest(__name__)})


def load_contactnet(path: str | Path) -> tuple[ContactNet, Tensor]:
    """The trained net (eval mode) and its hand-vertex subset [H] int64."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: ContactNet weights not found; run the contactnet stage (dvc repro contactnet)")
    with safe_open(str(path), framework="pt") as f:
        code = (f.metadata() or {}).get("code")
    if code != code_digest(__name__):
        raise ValueError(f"{path}: field 'code' is {code!r}, expected {code_digest(__name__)!r}: the net was trained "
                         "by other code; retrain it (dvc repro contactnet)")
    tensors = load_file(str(path))
    if "hand_subset" not in tensors:
        raise ValueError(f"{path}: field 'hand_subset' is missing; not a hogsa ContactNet file")
    hand_subset = tensors.pop("hand_subset")
    width = tensors["object_encoder.deep.2.weight"].shape[0]
    net = ContactNet(width)
    net.load_state_dict(tensors)
    return net.eval(), hand_subset


def object_surfaces(objects: dict[str, ArticulatedObject], count: int, seed: int) -> dict[str, SurfaceSamples]:
    """Surface samples of each object (seeded per object name, so each object's samples are fixed)."""
    return {name: SurfaceSamples(obj, count, seed=seed + sum(map(ord, name))) for name, obj in objects.items()}
