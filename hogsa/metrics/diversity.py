"""Pose diversity of bimanual grasp sets (paper Fig. 7 and §4.3 "Effect of Pose Optimization Module").

A grasp's descriptor is both hands' 21 joints (right then left, MANO/ARCTIC order) in the object's
frame (the inverse of its global rotation and translation), so two grasps compare by how the hands
hold the object, wherever it stands. The distance of two grasps is the mean per-joint distance of
their 42 joints (mm), as MPJPE without root alignment; grasps of different objects are not compared.

- coverage: the mean over held-out (test) grasps of the distance to the nearest grasp of a reference
  set of the same object; a lower value means the reference set holds grasps closer to unseen ones.
  Adding grasps to a reference set can only lower it (a nearest neighbour among more candidates is at
  least as near), so a comparison with the training set alone says how much closer, not whether.
- mean pairwise distance within a set (per object, then averaged over pairs of all objects);
- a t-SNE embedding of the descriptors (scikit-learn) for the figure.

Every function takes arrays: the caller skins the hands (``hogsa.pom.grasps.grasp_joints``).
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.manifold import TSNE

from hogsa.geometry import axis_angle_to_matrix

M_TO_MM = 1000.0


def grasp_descriptors(joints: np.ndarray, object_rot: np.ndarray, object_transl: np.ndarray) -> np.ndarray:
    """[S,42,3] descriptors (mm): both hands' world joints ``joints`` [S,42,3] (m, right then left) in the
    frame of objects at axis-angle ``object_rot`` [S,3] and ``object_transl`` [S,3] m (float64)."""
    rotation = axis_angle_to_matrix(torch.as_tensor(object_rot, dtype=torch.float64))
    transl = torch.as_tensor(object_transl, dtype=torch.float64)
    offset = torch.as_tensor(joints, dtype=torch.float64) - transl[:, None]
    return torch.einsum("sji,snj->sni", rotation, offset).numpy() * M_TO_MM


def pose_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[A,J,3], [B,J,3] descriptors → [A,B] mean per-joint distance."""
    return np.linalg.norm(a[:, None] - b[None], axis=-1).mean(axis=-1)


def coverage(test: np.ndarray, test_objects: np.ndarray, reference: np.ndarray, reference_objects: np.ndarray) -> float:
    """Mean over test descriptors of the distance to the nearest reference descriptor of the same object."""
    nearest = np.full(len(test), np.nan)
    for name in np.unique(test_objects):
        candidates = reference[reference_objects == name]
        chosen = test_objects == name
        if not len(candidates):
            raise ValueError(f"coverage: no reference grasp of object {str(name)!r}")
        nearest[chosen] = pose_distances(test[chosen], candidates).min(axis=1)
    return float(nearest.mean())


def mean_pairwise_distance(descriptors: np.ndarray, objects: np.ndarray) -> float:
    """Mean distance over all pairs of distinct grasps of the same object; NaN when no object has two."""
    total, pairs = 0.0, 0
    for name in np.unique(objects):
        chosen = descriptors[objects == name]
        n = len(chosen)
        if n > 1:
            total += pose_distances(chosen, chosen).sum()  # the diagonal is zero
            pairs += n * (n - 1)
    return float(total / pairs) if pairs else float("nan")


def tsne_embedding(descriptors: np.ndarray, seed: int) -> np.ndarray:
    """[S,2] t-SNE of the flattened descriptors (perplexity bounded by the sample count)."""
    flat = descriptors.reshape(len(descriptors), -1)
    perplexity = float(min(30.0, max(2.0, (len(flat) - 1) / 3)))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(flat)
