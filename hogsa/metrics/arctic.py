"""ARCTIC's evaluation metrics, computed as its evaluation code computes them (REFERENCES §5).

Every function works on one sequence seen from one view (one (sequence, view)): tensors are torch
floats in metres and camera coordinates, ``F`` frames, 21 joints per hand (root = joint 0, the wrist),
``Vh`` hand and ``Vo`` object vertices. Masks are bool [F] and final: a caller ANDs a hand's validity
with the frame's. Undefined values (an invalid frame, no contact) are NaN, never 0. A split's number
is one NaN-mean over the concatenation of every (sequence, view)'s values (``aggregate``): frame
weighted, not a mean of per-sequence means.

- ``mpjpe``: root-relative joint error (mm), the mean over all 21 joints (the root's error is 0).
- ``mrrpe_rl`` / ``mrrpe_ro``: error of the left wrist's / the object root's position relative to the
  right wrist (mm).
- ``aae``: articulation angle error (degrees, no wrapping).
- ``success_rate``: percent of root-aligned object vertices closer than ``alpha`` × diameter.
- ``cdev``: contact deviation (mm), on the ground truth's contacts and correspondences.
- ``contact_windows`` / ``mdev``: motion deviation (mm) over the ground truth's stable contact windows.
- ``acc_hand`` / ``acc_object``: acceleration error of root-relative vertices (m/s²).
- ``interaction_field``, ``field_error`` (mm), ``acc_field`` (m/s²): the interaction-field task.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

CONTACT_THRES = 3e-3  # m: a hand vertex this close to the object is in contact
WINDOW_THRES = 15  # frames: the shortest stable contact window (half a second at 30 fps)
FIELD_MAX_DIST = 0.1  # m: the interaction field's clamp

POSE_KEYS = ("joints_r", "joints_l", "verts_r", "verts_l", "obj_verts", "obj_angle")
FIELD_KEYS = ("dist_ro", "dist_lo", "dist_or", "dist_ol")
TARGET_KEYS = (*POSE_KEYS, "valid", "valid_r", "valid_l", "obj_bottom", "obj_diameter")
GT_FIELD_KEYS = ("dist_ro", "idx_ro", "dist_lo", "idx_lo", "dist_or", "dist_ol")  # optional target keys
OUTPUT_KEYS = ("mpjpe", "mrrpe_rl", "mrrpe_ro", "aae", "success_rate", "cdev", "mdev", "acc_hand",
               "acc_object", "field_error_ho", "field_error_oh", "acc_field_ho", "acc_field_oh")


def _nanmean(values: Tensor, dim: int | None = None) -> Tensor:
    """Mean of the non-NaN entries (along ``dim``); NaN where there are none."""
    finite = ~torch.isnan(values)
    total = torch.where(finite, values, torch.zeros_like(values))
    if dim is None:
        return total.sum() / finite.sum()
    return total.sum(dim) / finite.sum(dim)


def _masked(values: Tensor, valid: Tensor) -> Tensor:
    """``values`` [F, ...] with the frames where ``valid`` [F] is False set to NaN."""
    shape = (-1,) + (1,) * (values.dim() - 1)
    return torch.where(valid.view(shape), values, torch.full_like(values, math.nan))


def _triple_valid(valid: Tensor) -> Tensor:
    """[F-2]: frame t+1 has valid neighbours, i.e. frames t, t+1, t+2 are all valid."""
    return valid[:-2] & valid[1:-1] & valid[2:]


def _nan_pad(values: Tensor) -> Tensor:
    """[F-2] → [F]: NaN for the first and the last frame, which have no second difference."""
    pad = torch.full((1,), math.nan, dtype=values.dtype)
    return torch.cat((pad, values, pad))


def _accel_error(pred: Tensor, gt: Tensor, fps: float) -> Tensor:
    """[F, V, D] x2 → [F-2]: mean over the V points of ‖â − a‖, a the central second difference / h²."""
    h = 1.0 / fps
    accel_pred = (pred[:-2] - 2 * pred[1:-1] + pred[2:]) / h**2
    accel_gt = (gt[:-2] - 2 * gt[1:-1] + gt[2:]) / h**2
    return torch.linalg.vector_norm(accel_pred - accel_gt, dim=2).mean(dim=1)


def object_root(obj_verts: Tensor, bottom: Tensor) -> Tensor:
    """[F, Vo, 3], [Vo] bool → [F, 3]: the mean of the bottom (static) part's vertices per frame."""
    return obj_verts[:, bottom].mean(dim=1)


def nanmean_hands(m_r: Tensor, m_l: Tensor) -> Tensor:
    """[F], [F] → [F]: per frame the NaN-mean of the two hands' values (NaN when both are NaN)."""
    return _nanmean(torch.stack((m_r, m_l), dim=1), dim=1)


def interaction_field(hand_verts: Tensor, obj_verts: Tensor, max_dist: float = FIELD_MAX_DIST
                      ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """[F, Vh, 3], [F, Vo, 3] → (dist_ho [F, Vh], idx_ho [F, Vh] int64, dist_oh [F, Vo], idx_oh [F, Vo]
    int64): per vertex the distance (m) to the other entity's nearest vertex, clamped to [0, max_dist],
    and that vertex's index."""
    dist_ho, idx_ho, dist_oh, idx_oh = [], [], [], []
    for hand, obj in zip(hand_verts, obj_verts):  # one frame at a time: [Vh, Vo] stays small
        pairwise = torch.cdist(hand, obj, compute_mode="donot_use_mm_for_euclid_dist")
        d, i = pairwise.min(dim=1)
        dist_ho.append(d), idx_ho.append(i)
        d, i = pairwise.min(dim=0)
        dist_oh.append(d), idx_oh.append(i)
    return (torch.stack(dist_ho).clamp(0.0, max_dist), torch.stack(idx_ho),
            torch.stack(dist_oh).clamp(0.0, max_dist), torch.stack(idx_oh))


def mpjpe(pred_joints: Tensor, gt_joints: Tensor, valid: Tensor) -> Tensor:
    """[F, 21, 3] x2, [F] → [F] mm: mean over the joints of the root-relative position error."""
    error = torch.linalg.vector_norm((pred_joints - pred_joints[:, :1]) - (gt_joints - gt_joints[:, :1]), dim=2)
    return _masked(error.mean(dim=1) * 1000.0, valid)


def _relative_root_error(pred_a: Tensor, pred_b: Tensor, gt_a: Tensor, gt_b: Tensor, valid: Tensor) -> Tensor:
    """[F, 3] x4, [F] → [F] mm: ‖(b̂ − â) − (b − a)‖."""
    return _masked(torch.linalg.vector_norm((pred_b - pred_a) - (gt_b - gt_a), dim=1) * 1000.0, valid)


def mrrpe_rl(pred_joints_r: Tensor, pred_joints_l: Tensor, gt_joints_r: Tensor, gt_joints_l: Tensor,
             valid: Tensor) -> Tensor:
    """[F, 21, 3] x4, [F] (both hands valid) → [F] mm: error of the left wrist relative to the right."""
    return _relative_root_error(pred_joints_r[:, 0], pred_joints_l[:, 0], gt_joints_r[:, 0], gt_joints_l[:, 0], valid)


def mrrpe_ro(pred_joints_r: Tensor, pred_obj_verts: Tensor, gt_joints_r: Tensor, gt_obj_verts: Tensor,
             bottom: Tensor, valid: Tensor) -> Tensor:
    """[F, 21, 3], [F, Vo, 3] x2, [Vo] bool, [F] (right hand valid) → [F] mm: error of the object root
    relative to the right wrist."""
    return _relative_root_error(pred_joints_r[:, 0], object_root(pred_obj_verts, bottom),
                                gt_joints_r[:, 0], object_root(gt_obj_verts, bottom), valid)


def aae(pred_angle: Tensor, gt_angle: Tensor, valid: Tensor) -> Tensor:
    """[F] radians x2, [F] → [F] degrees: |θ̂ − θ|, not wrapped."""
    return _masked((pred_angle - gt_angle).abs() * (180.0 / math.pi), valid)


def success_rate(pred_obj_verts: Tensor, gt_obj_verts: Tensor, bottom: Tensor, diameter: float, valid: Tensor,
                 alpha: float = 0.05) -> Tensor:
    """[F, Vo, 3] x2, [Vo] bool, diameter (m), [F] → [F] percent of the root-aligned object vertices
    whose error is strictly below ``alpha`` × ``diameter``."""
    pred = pred_obj_verts - object_root(pred_obj_verts, bottom)[:, None]
    gt = gt_obj_verts - object_root(gt_obj_verts, bottom)[:, None]
    error = torch.linalg.vector_norm(pred - gt, dim=2)
    return _masked((error < alpha * diameter).to(pred.dtype).mean(dim=1) * 100.0, valid)


def cdev(pred_hand_verts: Tensor, pred_obj_verts: Tensor, gt_dist_ho: Tensor, gt_idx_ho: Tensor, valid: Tensor,
         contact_thres: float = CONTACT_THRES) -> Tensor:
    """[F, Vh, 3], [F, Vo, 3], [F, Vh], [F, Vh] int64, [F] → [F] mm: over the ground truth's contact
    vertices (dist ≤ ``contact_thres``), the mean distance between the predicted hand vertex and the
    predicted object vertex the ground truth matches it to; NaN without contact."""
    matched = torch.gather(pred_obj_verts, 1, gt_idx_ho[:, :, None].expand(-1, -1, 3))
    deviation = torch.linalg.vector_norm(matched - pred_hand_verts, dim=2)
    deviation = torch.where(gt_dist_ho > contact_thres, torch.full_like(deviation, math.nan), deviation)
    return _masked(_nanmean(deviation, dim=1) * 1000.0, valid)


def contact_windows(gt_dist_ho: Tensor, gt_idx_ho: Tensor, gt_obj_verts0: Tensor,
                    contact_thres: float = CONTACT_THRES, window_thres: int = WINDOW_THRES) -> Tensor:
    """[F, Vh], [F, Vh] int64, [Vo, 3] (the ground-truth object in frame 0) → LongTensor [W, 4] rows
    [m, n, i, j]: hand vertex i is in contact (dist strictly below ``contact_thres``) in every frame m..n
    (inclusive), at least ``window_thres`` of them, and not in frame n + 1 (a run lasting to the last
    frame is no window); j is its most frequent nearest object vertex (ties: the smallest index). A
    window whose matched vertices slide (the NaN-mean of their pairwise distances in frame 0, the upper
    triangle with the diagonal of the top-left ``window_thres`` block left out, exceeds
    ``contact_thres``) is dropped. Rows are ordered by i, then m."""
    contacts = gt_dist_ho < contact_thres
    frames = contacts.shape[0]
    upper = torch.triu_indices(window_thres, window_thres)
    windows = []
    for vertex in (contacts.sum(dim=0) >= window_thres).nonzero().view(-1).tolist():
        line = contacts[:, vertex].tolist()
        start = None
        for frame in range(frames):
            if line[frame] and start is None:
                start = frame
            elif not line[frame] and start is not None:
                end, begun, start = frame - 1, start, None
                if end - begun + 1 < window_thres:
                    continue
                matched = gt_idx_ho[begun:end + 1, vertex]
                spread = torch.cdist(gt_obj_verts0[matched], gt_obj_verts0[matched],
                                     compute_mode="donot_use_mm_for_euclid_dist")
                spread[upper[0], upper[1]] = math.nan
                if _nanmean(spread) > contact_thres:
                    continue
                windows.append([begun, end, vertex, int(torch.bincount(matched).argmax())])
    return torch.tensor(windows, dtype=torch.int64).view(-1, 4)


def mdev(pred_hand_verts: Tensor, pred_obj_verts: Tensor, gt_dist_ho: Tensor, gt_idx_ho: Tensor, gt_obj_verts: Tensor,
         valid: Tensor, contact_thres: float = CONTACT_THRES, window_thres: int = WINDOW_THRES) -> Tensor:
    """[F, Vh, 3], [F, Vo, 3], [F, Vh], [F, Vh] int64, [F, Vo, 3], [F] → [W] mm: per ground-truth contact
    window [m, n, i, j] (``contact_windows``, validity ignored), the mean over the pairs of consecutive
    valid frames of ‖Δv̂_h[i] − Δv̂_o[j]‖, displacements per frame; empty when there is no window."""
    windows = contact_windows(gt_dist_ho, gt_idx_ho, gt_obj_verts[0], contact_thres, window_thres)
    values = []
    for m, n, i, j in windows.tolist():
        hand = pred_hand_verts[m:n + 1, i]
        obj = pred_obj_verts[m:n + 1, j]
        deviation = torch.linalg.vector_norm((hand[1:] - hand[:-1]) - (obj[1:] - obj[:-1]), dim=1)
        pairs = valid[m:n] & valid[m + 1:n + 1]
        values.append(_nanmean(_masked(deviation, pairs)) * 1000.0)
    return torch.stack(values) if values else pred_hand_verts.new_zeros(0)


def acc_hand(pred_hand_verts: Tensor, gt_hand_verts: Tensor, pred_joints: Tensor, gt_joints: Tensor, valid: Tensor,
             fps: float = 30.0) -> Tensor:
    """[F, Vh, 3] x2, [F, 21, 3] x2, [F] → [F] m/s²: acceleration error of the wrist-relative vertices,
    where frames t−1, t, t+1 are valid; NaN-padded at both ends."""
    error = _accel_error(pred_hand_verts - pred_joints[:, :1], gt_hand_verts - gt_joints[:, :1], fps)
    return _nan_pad(_masked(error, _triple_valid(valid)))


def acc_object(pred_obj_verts: Tensor, gt_obj_verts: Tensor, bottom: Tensor, valid: Tensor,
               fps: float = 30.0) -> Tensor:
    """[F, Vo, 3] x2, [Vo] bool, [F] → [F] m/s²: acceleration error of the root-relative object
    vertices, where frames t−1, t, t+1 are valid; NaN-padded at both ends."""
    error = _accel_error(pred_obj_verts - object_root(pred_obj_verts, bottom)[:, None],
                         gt_obj_verts - object_root(gt_obj_verts, bottom)[:, None], fps)
    return _nan_pad(_masked(error, _triple_valid(valid)))


def field_error(pred_dist: Tensor, gt_dist: Tensor, valid: Tensor) -> Tensor:
    """[F, V] x2, [F] → [F] mm: mean over the vertices of |d̂ − d|."""
    return _masked((pred_dist - gt_dist).abs().mean(dim=1) * 1000.0, valid)


def acc_field(pred_dist: Tensor, gt_dist: Tensor, valid: Tensor, fps: float = 30.0) -> Tensor:
    """[F, V] x2, [F] → [F] m/s²: acceleration error of the distances, mean over the vertices, where
    frames t−1, t, t+1 are valid; NaN-padded at both ends."""
    error = _accel_error(pred_dist[:, :, None], gt_dist[:, :, None], fps)
    return _nan_pad(_masked(error, _triple_valid(valid)))


def _tensors(values: dict, keys: tuple[str, ...], where: str) -> dict[str, Tensor]:
    missing = [key for key in keys if key not in values]
    if missing:
        raise KeyError(f"{where} lacks {missing}")
    return {key: torch.as_tensor(values[key]) for key in keys}


def evaluate_frames(pred: dict, target: dict) -> dict[str, Tensor]:
    """Every metric of one (sequence, view): [F] values per key (``mdev``: [W], right windows then left).

    ``pred`` holds ``POSE_KEYS`` (joints [F,21,3], verts [F,Vh,3], obj_verts [F,Vo,3], obj_angle [F]
    radians) and, for the field task, ``FIELD_KEYS`` (field metrics run only when all four are there);
    ``target`` holds ``TARGET_KEYS``: the same pose keys, the raw masks ``valid``, ``valid_r``,
    ``valid_l`` (bool [F]), ``obj_bottom`` (bool [Vo]) and ``obj_diameter`` (m). The ground-truth field
    is computed from the target meshes, unless ``target`` holds it (``GT_FIELD_KEYS``, as
    ``interaction_field`` returns it: one computation then serves every view of a sequence)."""
    p = _tensors(pred, POSE_KEYS, "pred")
    t = _tensors(target, TARGET_KEYS, "target")
    valid = t["valid"].bool()
    valid_r, valid_l = t["valid_r"].bool() & valid, t["valid_l"].bool() & valid
    bottom, diameter = t["obj_bottom"].bool(), float(t["obj_diameter"])
    if all(key in target for key in GT_FIELD_KEYS):
        dist_ro, idx_ro, dist_lo, idx_lo, dist_or, dist_ol = _tensors(target, GT_FIELD_KEYS, "target").values()
    else:
        dist_ro, idx_ro, dist_or, _ = interaction_field(t["verts_r"], t["obj_verts"])
        dist_lo, idx_lo, dist_ol, _ = interaction_field(t["verts_l"], t["obj_verts"])

    frames = {
        "mpjpe": nanmean_hands(mpjpe(p["joints_r"], t["joints_r"], valid_r), mpjpe(p["joints_l"], t["joints_l"], valid_l)),
        "mrrpe_rl": mrrpe_rl(p["joints_r"], p["joints_l"], t["joints_r"], t["joints_l"], valid_r & valid_l),
        "mrrpe_ro": mrrpe_ro(p["joints_r"], p["obj_verts"], t["joints_r"], t["obj_verts"], bottom, valid_r),
        "aae": aae(p["obj_angle"], t["obj_angle"], valid),
        "success_rate": success_rate(p["obj_verts"], t["obj_verts"], bottom, diameter, valid),
        "cdev": nanmean_hands(cdev(p["verts_r"], p["obj_verts"], dist_ro, idx_ro, valid_r),
                              cdev(p["verts_l"], p["obj_verts"], dist_lo, idx_lo, valid_l)),
        "mdev": torch.cat((mdev(p["verts_r"], p["obj_verts"], dist_ro, idx_ro, t["obj_verts"], valid_r),
                           mdev(p["verts_l"], p["obj_verts"], dist_lo, idx_lo, t["obj_verts"], valid_l))),
        "acc_hand": nanmean_hands(acc_hand(p["verts_r"], t["verts_r"], p["joints_r"], t["joints_r"], valid_r),
                                  acc_hand(p["verts_l"], t["verts_l"], p["joints_l"], t["joints_l"], valid_l)),
        "acc_object": acc_object(p["obj_verts"], t["obj_verts"], bottom, valid),
    }
    if all(key in pred for key in FIELD_KEYS):
        f = _tensors(pred, FIELD_KEYS, "pred")
        frames["field_error_ho"] = nanmean_hands(field_error(f["dist_ro"], dist_ro, valid),
                                                 field_error(f["dist_lo"], dist_lo, valid))
        frames["field_error_oh"] = nanmean_hands(field_error(f["dist_or"], dist_or, valid),
                                                 field_error(f["dist_ol"], dist_ol, valid))
        frames["acc_field_ho"] = nanmean_hands(acc_field(f["dist_ro"], dist_ro, valid_r),
                                               acc_field(f["dist_lo"], dist_lo, valid_l))
        frames["acc_field_oh"] = nanmean_hands(acc_field(f["dist_or"], dist_or, valid),
                                               acc_field(f["dist_ol"], dist_ol, valid))
    return frames


def aggregate(frames: list[dict[str, Tensor]]) -> dict[str, float]:
    """A split's numbers: per key, one NaN-mean over the concatenated values of every (sequence, view)
    (frame weighted); NaN when no value is defined."""
    keys = [key for key in OUTPUT_KEYS if any(key in f for f in frames)]
    return {key: float(_nanmean(torch.cat([f[key].reshape(-1).double() for f in frames if key in f])))
            for key in keys}


def evaluate(pred: dict, target: dict) -> dict[str, float]:
    """The numbers of one (sequence, view): ``aggregate([evaluate_frames(pred, target)])``."""
    return aggregate([evaluate_frames(pred, target)])
