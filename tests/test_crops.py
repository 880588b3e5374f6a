"""The crop procedure: boxes from masks and from projected points, the window's pixels, the crop's camera."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
import trimesh

from hogsa.articulated import ArticulatedObject, ObjectPose
from hogsa.data.crops import (
    CropBox,
    box_from_mask,
    box_from_points,
    crop_camera,
    crop_frame,
    crop_image,
    crop_labels,
    crop_view,
)
from hogsa.data.part_masks import render_part_mask
from hogsa.data.rig import look_at
from hogsa.data.schema import Camera


def _camera(width: int = 64, height: int = 48) -> Camera:
    K = np.array([[70.0, 0, 30.5], [0, 72.0, 22.0], [0, 0, 1]])
    return Camera(K=K, world2cam=look_at(np.array([0.3, -0.5, 0.4]), np.array([0.0, 0.02, 0.05])), width=width,
                  height=height)


def test_a_mask_gives_a_centred_square_box_with_margin():
    mask = np.zeros((50, 80), dtype=np.uint8)
    mask[10:20, 30:70] = 3  # 10 rows × 40 columns
    mask[12, 35] = 1
    # side ⌈40 · (1 + 2 · 0.25)⌉ = 60 about the centre (50, 15): x0 = 50 − 30, y0 = 15 − 30 (outside the image)
    assert box_from_mask(mask, margin=0.25) == CropBox(x0=20, y0=-15, side=60)
    assert box_from_mask(mask, margin=0.0) == CropBox(30, -5, 40)  # the longer side alone, still square
    assert box_from_mask(np.zeros((5, 5), dtype=np.uint8), 0.1) is None


def test_projected_points_give_the_box_of_the_pixels_they_land_in():
    """Points put at chosen pixels of an axis-aligned camera: the box is the mask box of those pixels, and
    points behind the camera or outside the image do not count."""
    K = np.array([[100.0, 0, 50.0], [0, 100.0, 40.0], [0, 0, 1]])
    camera = Camera(K=K, world2cam=np.eye(4), width=100, height=80)
    pixels = [(12, 7), (29, 16), (20, 10)]  # (col, row)
    depth = 2.0
    points = [[(col + 0.3 - 50.0) * depth / 100.0, (row + 0.6 - 40.0) * depth / 100.0, depth] for col, row in pixels]
    points += [[0.9, 0.2, -1.0], [3.0, 0.0, 1.0]]  # behind the camera; at column 350, outside
    mask = np.zeros((80, 100), dtype=np.uint8)
    for col, row in pixels:
        mask[row, col] = 1
    box = box_from_points(np.array(points), camera, margin=0.1)
    assert box == box_from_mask(mask, margin=0.1) == CropBox(x0=10, y0=1, side=22)  # 18 columns · 1.2 → 22
    assert box_from_points(torch.tensor([[0.0, 0.0, -1.0]]), camera, 0.1) is None


def test_the_crops_camera_projects_where_the_crop_transform_maps_the_original_projection():
    camera, box, size = _camera(), CropBox(x0=10, y0=-4, side=40), 20
    cropped = crop_camera(camera, box, size)
    points = np.array([[0.0, 0.0, 0.0], [0.02, -0.01, 0.03], [-0.05, 0.04, 0.1]])
    # independent: pinhole by hand, then pixel p of the image is pixel (p − corner) · size / side of the crop
    cam = points @ camera.world2cam[:3, :3].T + camera.world2cam[:3, 3]
    uv = (cam @ camera.K.T)[:, :2] / cam[:, 2:]
    expected = (uv - [box.x0, box.y0]) * size / box.side
    cam_crop = points @ cropped.world2cam[:3, :3].T + cropped.world2cam[:3, 3]
    uv_crop = (cam_crop @ cropped.K.T)[:, :2] / cam_crop[:, 2:]
    np.testing.assert_allclose(uv_crop, expected, atol=1e-9)
    assert (cropped.width, cropped.height) == (20, 20) and np.array_equal(cropped.world2cam, camera.world2cam)


def test_a_window_reaching_outside_the_image_is_zero_there():
    labels = torch.zeros(10, 12, dtype=torch.uint8)
    labels[2:8, 3:9] = 2
    image = torch.rand(3, 10, 12, generator=torch.Generator().manual_seed(0))
    box = CropBox(x0=-4, y0=-2, side=16)  # same size: no resampling
    cropped = crop_labels(labels, box, 16)
    assert cropped.dtype == torch.uint8 and torch.equal(cropped[2:12, 4:16], labels)
    assert cropped[:2].sum() == 0 and cropped[:, :4].sum() == 0 and cropped[12:].sum() == 0
    pixels = crop_image(image, box, 16)
    assert torch.allclose(pixels[:, 2:12, 4:16], image, atol=1e-6) and pixels[:, :2].abs().sum() == 0
    halved = crop_labels(labels, CropBox(0, 0, 12), 6)  # nearest-exact at scale 2: source pixels 1, 3, …, 11
    padded = torch.zeros(12, 12, dtype=torch.uint8)
    padded[:10] = labels
    assert torch.equal(halved, padded[1::2, 1::2])


def test_a_view_is_cropped_black_outside_its_labels():
    labels = torch.zeros(20, 20, dtype=torch.uint8)
    labels[5:15, 6:16] = 3
    image = torch.full((3, 20, 20), 0.7)
    crop = crop_view(image, labels, _camera(20, 20), CropBox(0, 0, 20), 20)
    assert torch.allclose(crop.image[:, labels > 0], torch.tensor(0.7), atol=1e-6)
    assert crop.image[:, labels == 0].abs().max() < 1e-6
    assert torch.equal(crop.labels, labels) and crop.camera.width == 20


def _cube(side: float = 0.15) -> ArticulatedObject:
    """A rigid cube of ``side`` metres centred at the origin."""
    mesh = trimesh.creation.box(extents=[side] * 3)
    faces = torch.as_tensor(mesh.faces, dtype=torch.long)
    return ArticulatedObject("cube", torch.as_tensor(mesh.vertices, dtype=torch.float32), faces,
                             torch.zeros(len(mesh.vertices), dtype=torch.bool), torch.zeros(len(faces), 3, 2),
                             torch.zeros(1, 1, 3, dtype=torch.uint8), False, side * np.sqrt(3))


def test_a_frame_without_masks_is_cropped_around_its_rendered_parts_and_one_without_parts_gives_none():
    camera = _camera()
    image = np.full((48, 64, 3), 200, dtype=np.uint8)
    cube = _cube()
    seq = SimpleNamespace(name="s01/box_grab_01", image=lambda view, frame: image, camera=lambda view, frame: camera,
                          mask=lambda view, frame: None, hand_valid={"right": [False] * 8, "left": [False] * 8},
                          object_pose=ObjectPose(np.zeros(8), np.zeros((8, 3)), np.tile([0.0, 0.02, 0.05], (8, 1))))
    mask = render_part_mask(seq, 3, 7, {}, cube)  # no hand is annotated: the cube alone
    assert set(np.unique(mask)) == {0, 3}
    corners = cube.vertices.double().numpy() + [0.0, 0.02, 0.05]
    from_mask, from_corners = box_from_mask(mask, 0.0), box_from_points(corners, camera, 0.0)
    # a cube's silhouette is its corners' hull: the pixel centres it covers reach the corners' pixels, give or take one
    assert abs(from_mask.x0 - from_corners.x0) <= 1 and abs(from_mask.y0 - from_corners.y0) <= 1
    assert abs(from_mask.side - from_corners.side) <= 2
    crop = crop_frame(seq, 3, 7, 16, 0.0, {}, cube)
    np.testing.assert_allclose(crop.camera.K, crop_camera(camera, from_mask, 16).K)
    assert set(np.unique(crop.labels)) == {0, 3}
    seq.mask = lambda view, frame: np.zeros((48, 64), dtype=np.uint8)
    assert crop_frame(seq, 3, 7, 16, 0.05, {}, cube) is None
    mask = np.zeros((48, 64), dtype=np.uint8)
    mask[10:30, 20:40] = 1
    seq.mask = lambda view, frame: mask  # the dataset's mask comes first
    crop = crop_frame(seq, 3, 7, 16, 0.0, {}, cube)
    assert crop.image.shape == (3, 16, 16) and torch.allclose(crop.image, torch.tensor(200 / 255), atol=1e-6)
    assert crop.camera.K[0, 2] == pytest.approx((camera.K[0, 2] - 20) * 16 / 20)
