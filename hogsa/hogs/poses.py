"""Per-frame corrections of the annotated poses (the annotations' mocap error), learned from the images.

Annotations of real captures are off by millimetres and degrees (ARCTIC's MANO fits, H2O's; the
embedded dataset jitters its annotations on purpose), and at the scale of a crop that is a pixel or
more: a model trained on the annotated poses as they are learns a blurred average of misaligned
images. hogsa learns, for every training frame, a small correction of each part's pose, shared by all
views of that frame, jointly with the Gaussians (as hand-avatar methods refine their MANO fits);
the frames of a held-out set get theirs fitted with the model frozen (``fit_corrections``).

A frame's correction has ``ANGLES`` [100] radians: right hand's global rotation (3, composed on the
left of the annotated one, a rotation about the wrist) and finger pose (45, added), the same for the
left hand, the object's rotation (3, composed on the left) and articulation (1, added); and
``OFFSETS`` [9] metres: added to the right hand's, the left hand's and the object's translations.
All start at zero, so an untrained correction leaves the annotation as it is.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from hogsa.articulated import ObjectPose
from hogsa.compiled import lazily_compiled
from hogsa.geometry import axis_angle_to_matrix, matrix_to_axis_angle
from hogsa.hand import HandPose
from hogsa.hogs.model import GaussianScene, concat_poses
from hogsa.training import frozen

FrameKey = tuple[str, int]  # (sequence name, frame index)
ANGLES = 100  # radians: right orient 3 + pose 45, left orient 3 + pose 45, object rotation 3 + articulation 1
OFFSETS = 9  # metres: right, left, object translations
POSE_LR_KEYS = ("angles", "offsets")


class PoseCorrections(nn.Module):
    """One correction (module docstring) per frame of ``frames``; frames it lacks pass unchanged.

    Each frame's correction is its own pair of parameters, so Adam leaves the frames absent from a
    batch untouched (a parameter without a gradient is skipped) instead of moving them on momentum.
    """

    def __init__(self, frames: Iterable[FrameKey]) -> None:
        super().__init__()
        self.frames = sorted(set(frames))
        self.angles = nn.ParameterDict({frame_name(k): nn.Parameter(torch.zeros(ANGLES)) for k in self.frames})
        self.offsets = nn.ParameterDict({frame_name(k): nn.Parameter(torch.zeros(OFFSETS)) for k in self.frames})

    def __contains__(self, frame: FrameKey) -> bool:
        return frame_name(frame) in self.angles

    def apply(self, frame: FrameKey, right: HandPose, left: HandPose, obj: ObjectPose
              ) -> tuple[HandPose, HandPose, ObjectPose]:
        """The one-row poses of ``frame`` with its correction applied (unchanged when the frame has none)."""
        if frame not in self:
            return right, left, obj
        angles, offsets = self.angles[frame_name(frame)], self.offsets[frame_name(frame)]
        return (
            correct_hand(right, angles[0:48], offsets[0:3]),
            correct_hand(left, angles[48:96], offsets[3:6]),
            ObjectPose(articulation=obj.articulation + angles[99], rot=compose(angles[96:99], obj.rot),
                       transl=obj.transl + offsets[6:9]),
        )

    def apply_frames(self, samples: Sequence) -> tuple[HandPose, HandPose, ObjectPose]:
        """The corrected poses of B samples (objects with .sequence, .frame, .right, .left, .obj), row b
        that of ``samples[b]``'s frame: what ``GaussianScene.render_frames`` takes."""
        rows = [self.apply((s.sequence, s.frame), s.right, s.left, s.obj) for s in samples]
        return tuple(concat_poses(part) for part in zip(*rows))

    def param_groups(self, lr: dict[str, float]) -> list[dict]:
        """Adam groups ``poses/angles`` and ``poses/offsets``; ``lr`` keys ``POSE_LR_KEYS``."""
        if set(lr) != set(POSE_LR_KEYS):
            raise ValueError(f"pose learning rates need exactly the keys {POSE_LR_KEYS}, got {sorted(lr)}")
        return [{"params": list(self.angles.values()), "lr": float(lr["angles"]), "name": "poses/angles"},
                {"params": list(self.offsets.values()), "lr": float(lr["offsets"]), "name": "poses/offsets"}]

    def magnitudes(self) -> dict[str, float]:
        """RMS over frames of the corrections: rotations in degrees, translations in millimetres."""
        if not self.frames:
            return {"rotation_deg": 0.0, "translation_mm": 0.0}
        with torch.no_grad():
            angles = torch.stack(list(self.angles.values()))  # [F, 100]
            offsets = torch.stack(list(self.offsets.values())).reshape(-1, 3, 3)  # [F, part, xyz]
            rotations = torch.cat([angles[:, 0:3], angles[:, 48:51], angles[:, 96:99]], dim=1).reshape(-1, 3, 3)
        return {"rotation_deg": float(torch.rad2deg(rotations.norm(dim=-1)).square().mean().sqrt()),
                "translation_mm": float((1000 * offsets.norm(dim=-1)).square().mean().sqrt())}


def frame_name(frame: FrameKey) -> str:
    """A parameter name for ``frame`` ("s01/box_grab_01", 3 → "s01|box_grab_01|3"; no dots allowed)."""
    sequence, index = frame
    return f"{sequence.replace('/', '|')}|{index}"


def compose(correction: Tensor, axis_angle: Tensor) -> Tensor:  # [3], [1, 3] → [1, 3] radians
    """The axis-angle of R(correction)·R(axis_angle) for a one-row pose (one 3×3 product)."""
    if axis_angle.shape != (1, 3):
        raise ValueError(f"compose: expected a one-row axis-angle [1, 3], got {tuple(axis_angle.shape)}")
    return _compose(correction, axis_angle[0])[None]


@lazily_compiled
def _compose(correction: Tensor, axis_angle: Tensor) -> Tensor:  # [3], [3] → [3]
    """Compiled: eagerly, these few dozen operations on 3-vectors cost a tenth of a training step."""
    return matrix_to_axis_angle(axis_angle_to_matrix(correction) @ axis_angle_to_matrix(axis_angle))


def correct_hand(pose: HandPose, angles: Tensor, offset: Tensor) -> HandPose:  # one row; angles [48], offset [3]
    return HandPose(global_orient=compose(angles[:3], pose.global_orient), hand_pose=pose.hand_pose + angles[3:],
                    betas=pose.betas, transl=pose.transl + offset)


def fit_corrections(
    model: GaussianScene,
    corrections: PoseCorrections,
    samples_by_frame: dict[FrameKey, Sequence],  # frame → the crops it is fitted on (objects with .camera,
    # .image [3, S, S], .sequence, .frame, .right, .left, .obj)
    image_loss: Callable[[Tensor, Tensor], Tensor],  # (pred [B, 3, S, S], target [B, 3, S, S]) → []
    lr: dict[str, float],
    iterations: int,
    batch: int,
    seed: int,
    desc: str,  # labels the progress bar
    crops_per_call: int = 8,  # bounds the renders (and their autograd graphs) held at once
) -> None:
    """Fit the corrections of the given frames to their crops with the model frozen: Adam, ``iterations``
    steps, each rendering ``batch`` crops of every frame (drawn by a generator per frame, seeded by ``seed``)
    in one call, at most ``crops_per_call`` crops a call (frames beyond that are fitted in further groups).
    The loss sums each frame's own ``image_loss`` and Adam steps each parameter by its own gradient, so
    every frame is fitted as if alone, in a fraction of the calls."""
    frames = list(samples_by_frame)
    group = max(1, crops_per_call // batch)
    with frozen(model):
        for start in tqdm(range(0, len(frames), group), desc=desc):
            _fit_together(model, corrections, {f: samples_by_frame[f] for f in frames[start:start + group]},
                          image_loss, lr, iterations, batch, seed)


def _fit_together(model: GaussianScene, corrections: PoseCorrections, samples_by_frame: dict[FrameKey, Sequence],
                  image_loss: Callable[[Tensor, Tensor], Tensor], lr: dict[str, float], iterations: int, batch: int,
                  seed: int) -> None:
    names = [frame_name(frame) for frame in samples_by_frame]
    draws = [random.Random(f"{seed}|{name}") for name in names]
    pools = [list(samples) for samples in samples_by_frame.values()]
    optimizer = torch.optim.Adam([{"params": [corrections.angles[n] for n in names], "lr": lr["angles"]},
                                  {"params": [corrections.offsets[n] for n in names], "lr": lr["offsets"]}])
    for _ in range(iterations):
        picks = [draw.sample(pool, min(batch, len(pool))) for draw, pool in zip(draws, pools)]
        flat = [s for frame_picks in picks for s in frame_picks]
        pred = model.render_frames([s.camera for s in flat], *corrections.apply_frames(flat)).rgb
        target = torch.stack([s.image for s in flat])
        bounds = np.cumsum([0] + [len(frame_picks) for frame_picks in picks])
        loss = sum(image_loss(pred[a:b], target[a:b]) for a, b in zip(bounds[:-1], bounds[1:]))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def corrected(sample, corrections: PoseCorrections):
    """``sample`` (a dataclass with .sequence, .frame, .right, .left, .obj) with its frame's corrected
    poses, detached."""
    with torch.no_grad():
        right, left, obj = corrections.apply((sample.sequence, sample.frame), sample.right, sample.left, sample.obj)
    return dataclasses.replace(sample, right=detached(right), left=detached(left), obj=detached(obj))


def detached(pose: HandPose | ObjectPose) -> HandPose | ObjectPose:
    """The same pose record with every field detached from the graph."""
    return type(pose)(*(field.detach() for field in pose))
