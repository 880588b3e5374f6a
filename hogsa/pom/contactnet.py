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
grasp frames, each hand separately: the hand's vertices and, as the target, the contact map the hand
leaves on the object's surface samples. Each time a pair is drawn it is augmented:

- the whole pair (object points and hand) turns by a uniform angle about the object's up axis;
- it is mirrored through the plane z = 0 (a left hand becomes a right one) with probability ½ when the
  object is symmetric under that mirror (``mirror_symmetric``): the plane is perpendicular to the
  hinge, so the mirrored pair is a valid grasp of the same object at the same articulation;
- the hand, and only the hand, moves by a random direction times U[0, ``jitter``] m: the net learns to
  answer for a hand slightly off its grasp, as the optimiser's initial poses are, with the contact of
  the grasp itself as the target.

The loss is the reference's squared error summed over the object points (GraspTTA's ContactNet
training), each point weighted by 1 + (w − 1)·target with w the ratio of non-contact to contact
points (target ≤ 0.5 against > 0.5) of the training targets: the rare contact points weigh as much in
all as the rest of the surface, where an unweighted loss is minimised by predicting almost no contact.
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
from hogsa.data.contact import SurfaceDistance
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
    epochs: int  # passes over the training pairs, each pair augmented anew (chosen on the val split)
    batch_size: int
    learning_rate: float  # Adam, decayed by a cosine to a tenth over the epochs
    jitter: float  # m: hands are moved by up to this much (target: the unmoved contact), in training and scoring
    augment: bool  # turn about the up axis and mirror (module doc); the jitter applies either way
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
    """``forward(object_points [B,N,3], hand_points [B,H,3])`` (object frame, m) → contact [B,N] in (0,1).

    The head's first layer acts on [code; local] per point; it is split into its code part, applied
    once per pair, and its local part, applied per point (the same linear map, a third of the work)."""

    def __init__(self, global_features: int = 1024):
        super().__init__()
        self.global_features = global_features
        self.object_encoder = PointNetEncoder(global_features)
        self.hand_encoder = PointNetEncoder(global_features)
        self.mix = nn.Sequential(nn.Linear(2 * global_features, global_features), nn.ReLU())
        self.head_code = nn.Linear(global_features, 512)
        self.head_local = nn.Conv1d(64, 512, 1, bias=False)
        self.head = nn.Sequential(nn.ReLU(), nn.Conv1d(512, 256, 1), nn.ReLU(), nn.Conv1d(256, 128, 1), nn.ReLU(),
                                  nn.Conv1d(128, 1, 1))

    def logits(self, object_points: Tensor, hand_points: Tensor) -> Tensor:  # [B,N]
        local, object_code = self.object_encoder(object_points * INPUT_SCALE)
        _, hand_code = self.hand_encoder(hand_points * INPUT_SCALE)
        code = self.mix(torch.cat([object_code, hand_code], dim=-1))
        return self.head(self.head_code(code)[:, :, None] + self.head_local(local))[:, 0]

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
    up_axis: Tensor  # [E] int64: the object's canonical up axis (0 x, 1 y, 2 z)
    mirrorable: Tensor  # [E] bool: the object is symmetric under z ↦ -z (``mirror_symmetric``)

    def take(self, index: Tensor) -> ContactExamples:
        """The pairs at ``index`` ([K] int64 or [E] bool)."""
        return ContactExamples(*(field[index] for field in self))


def mirror_symmetric(obj: ArticulatedObject, tolerance: float = 1e-3, articulations: tuple[float, ...] = (0.0, 1.0)
                     ) -> bool:
    """Whether ``obj`` maps onto itself under the mirror z ↦ -z (its every vertex lands within
    ``tolerance`` m of its surface), at each of ``articulations`` rad. The plane is perpendicular to the
    hinge (the canonical z axis), so the mirror keeps the articulation."""
    for articulation in articulations:
        with torch.no_grad():
            verts = obj.pose(torch.tensor([articulation]), torch.zeros(1, 3), torch.zeros(1, 3))[0].double().numpy()
        mirrored = verts * np.array([1.0, 1.0, -1.0])
        if np.abs(SurfaceDistance(verts, obj.faces.numpy())(mirrored)).max() > tolerance:
            return False
    return True


def contact_examples(grasps: Grasps, hands: dict[str, HandModel], surfaces: dict[str, SurfaceSamples]
                     ) -> ContactExamples:
    """One pair per grasp and hand side: the object's surface samples and the hand in the object frame."""
    objects, hand_points, targets, up_axes, mirrorable = [], [], [], [], []
    for name, surface in surfaces.items():
        chosen = grasps.take(grasps.object_name == name)
        if not len(chosen):
            continue
        object_pose = chosen.object_pose.torch()
        zeros = torch.zeros(len(chosen), 3)
        symmetric = mirror_symmetric(surface.obj)
        with torch.no_grad():
            points, _ = surface.pose(object_pose.articulation, zeros, zeros)
            for side in SIDES:
                verts = hands[side](*chosen.hands[side].torch()).vertices
                verts = to_object_frame(verts, object_pose.rot, object_pose.transl)
                objects.append(points)
                hand_points.append(verts)
                targets.append(object_contact_map(points, verts))
                up_axes.append(torch.full((len(chosen),), surface.obj.up_axis, dtype=torch.long))
                mirrorable.append(torch.full((len(chosen),), symmetric))
    return ContactExamples(torch.cat(objects), torch.cat(hand_points), torch.cat(targets), torch.cat(up_axes),
                           torch.cat(mirrorable))


def jittered(hand_points: Tensor, jitter: float, generator: torch.Generator) -> Tensor:
    """[E,V,3] hands each moved by a random direction times U[0, jitter] m."""
    direction = F.normalize(torch.randn(hand_points.shape[0], 3, generator=generator), dim=-1)
    length = torch.rand(hand_points.shape[0], 1, generator=generator) * jitter
    return hand_points + (direction * length)[:, None]


def augmentation_transforms(up_axis: Tensor, mirrorable: Tensor, generator: torch.Generator) -> Tensor:
    """[E] up axes, [E] bool → [E,3,3]: a uniform turn about each up axis after, with probability ½
    where ``mirrorable``, the mirror z ↦ -z (det -1)."""
    angle = torch.rand(len(up_axis), generator=generator) * (2.0 * torch.pi)
    turn = axis_angle_to_matrix(F.one_hot(up_axis, 3).float() * angle[:, None])
    flip = (torch.rand(len(up_axis), generator=generator) < 0.5) & mirrorable
    mirror = torch.diag_embed(torch.stack([torch.ones_like(angle), torch.ones_like(angle),
                                           torch.where(flip, -1.0, 1.0)], dim=-1))
    return turn @ mirror


def augmented(object_points: Tensor, hand_points: Tensor, up_axis: Tensor, mirrorable: Tensor, cfg: ContactNetConfig,
              generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """A batch of pairs as training draws it (module doc): [E,N,3], [E,H,3] → the same, augmented.
    The target stays with its object point, so it needs no change."""
    hand_points = jittered(hand_points, cfg.jitter, generator)
    if not cfg.augment:
        return object_points, hand_points
    transform = augmentation_transforms(up_axis, mirrorable, generator)
    return (torch.einsum("eij,enj->eni", transform, object_points),
            torch.einsum("eij,enj->eni", transform, hand_points))


def contact_weight(target: Tensor) -> float:
    """w of the loss (module doc): non-contact over contact points of ``target``, at least 1 (1 when no
    point is in contact: there is nothing to balance)."""
    touching = int((target > 0.5).sum())
    return max(1.0, (target.numel() - touching) / touching) if touching else 1.0


def weighted_squared_error(predicted: Tensor, target: Tensor, weight: float) -> Tensor:
    """[B,N] maps → scalar: Σ_points (1 + (w − 1)·target)·(predicted − target)², mean over the batch."""
    return ((1.0 + (weight - 1.0) * target) * (predicted - target).square()).sum(-1).mean()


class EpochRecord(NamedTuple):
    """One epoch of ``train_contactnet``."""

    train_loss: float  # mean weighted squared error of the epoch's batches (per pair)
    val: ContactScores | None  # scores on the validation pairs after the epoch; None without them


def train_contactnet(examples: ContactExamples, hand_subset: Tensor, cfg: ContactNetConfig, seed: int,
                     val: ContactExamples | None = None) -> tuple[ContactNet, list[EpochRecord]]:
    """Fit ContactNet (Adam, the weighted squared error of the module doc) on augmented draws of
    ``examples``; after each epoch the net is scored on ``val`` (jittered once, by ``scoring_inputs``).
    Returns the net (eval mode) and the epochs."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    net = ContactNet(cfg.global_features)
    optimizer = torch.optim.Adam(net.parameters(), lr=cfg.learning_rate)
    steps_per_epoch = -(-len(examples.target) // cfg.batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, cfg.epochs * steps_per_epoch,
                                                          eta_min=0.1 * cfg.learning_rate)
    weight = contact_weight(examples.target)
    val_inputs = scoring_inputs(val, cfg.jitter, seed) if val is not None and len(val.target) else None
    records = []
    for _ in tqdm(range(cfg.epochs), desc="contactnet"):
        net.train()
        order = torch.randperm(len(examples.target), generator=generator)
        total = 0.0
        for start in range(0, len(order), cfg.batch_size):
            batch = examples.take(order[start:start + cfg.batch_size])
            points, hand = augmented(batch.object_points, batch.hand_points[:, hand_subset], batch.up_axis,
                                     batch.mirrorable, cfg, generator)
            loss = weighted_squared_error(net(points, hand), batch.target, weight)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            total += float(loss.detach()) * len(batch.target)
        net.eval()
        scores = None
        if val_inputs is not None:
            scores = contact_scores(predict(net, val.object_points, val_inputs[:, hand_subset]), val.target)
        records.append(EpochRecord(total / len(order), scores))
    return net.eval(), records


def scoring_inputs(examples: ContactExamples, jitter: float, seed: int) -> Tensor:
    """[E,V,3] the pairs' hands jittered as training jitters them, by a generator of its own (seed + 1):
    the same draw for every epoch and every run."""
    return jittered(examples.hand_points, jitter, torch.Generator().manual_seed(seed + 1))


@torch.no_grad()
def predict(net: ContactNet, object_points: Tensor, hand_points: Tensor, batch_size: int = 32) -> Tensor:
    """[E,N] contact probabilities in batches (inputs as ``ContactNet.forward``)."""
    return torch.cat([net(object_points[k:k + batch_size], hand_points[k:k + batch_size])
                      for k in range(0, len(object_points), batch_size)])


class ContactScores(NamedTuple):
    """A predicted contact map against the target; contact means a value above 0.5."""

    mae: float  # mean absolute error over all object points
    mae_contact_points: float  # over the points in contact in the target; NaN when there are none
    precision: float  # of the predicted contact points, the share in contact in the target (NaN: none predicted)
    recall: float  # of the target's contact points, the share predicted (NaN: none in the target)
    f1: float  # harmonic mean of the two; 0 when either is 0 or undefined with contact on the other side


def contact_scores(predicted: Tensor, target: Tensor) -> ContactScores:
    """[E,N] predicted and target contact maps → their ``ContactScores``."""
    error = (predicted - target).abs()
    touching, called = target > 0.5, predicted > 0.5
    hits = float((touching & called).sum())
    precision = hits / float(called.sum()) if called.any() else float("nan")
    recall = hits / float(touching.sum()) if touching.any() else float("nan")
    f1 = 2.0 * hits / float(called.sum() + touching.sum()) if (called.any() or touching.any()) else float("nan")
    return ContactScores(float(error.mean()), float(error[touching].mean()) if touching.any() else float("nan"),
                         precision, recall, f1)


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
