"""The embedded dataset: generation, read-back, annotation/image agreement, plausible grasps."""

import dataclasses
import shutil
import time

import numpy as np
import pytest
import torch

from hogsa.data import arctic, arctic_objects, synth
from hogsa.data.contact import ObjectDistance
from hogsa.data.synth import EmbeddedConfig
from hogsa.geometry import project_points
from hogsa.hand import hand_vertices
from hogsa.metrics.arctic import contact_windows, interaction_field
from hogsa.report.data import joints_on_mask, posed_object

SMOKE = EmbeddedConfig(
    splits={"train": ["s01"], "val": [], "test": ["s02"]}, objects=["box"], actions=["grab"], frames=4, eval_frames=6,
    eval_views=[1, 4, 5, 8], image_size=[160, 120], view_scales=[1.0, 0.8, 1.0, 0.8, 1.0, 0.8, 1.0, 0.8], fov_deg=50.0,
    camera_distance=0.75, supersample=1, soft_shadow_samples=1, jitter_mm=2.0, jitter_deg=1.0, jitter_frames=4.0,
    noise_std=0.01, jpeg_quality=90, workers=1,
)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("embedded")
    start = time.perf_counter()
    names = synth.generate(root, SMOKE, seed=0)
    sequences = {n: arctic.read_sequence(root, n) for n in names}
    elapsed = time.perf_counter() - start
    return root, sequences, elapsed


def test_smoke_set_generates_and_reads_back_quickly(dataset):
    root, sequences, elapsed = dataset
    assert elapsed < 120
    assert sorted(sequences) == ["s01/box_grab_01", "s02/box_grab_01"]
    assert arctic.list_sequences(root, "train") == ["s01/box_grab_01"]
    assert arctic.list_sequences(root, "test") == ["s02/box_grab_01"]
    seq = sequences["s01/box_grab_01"]
    assert seq.views == list(range(1, 9)) and seq.frames == 4
    test_seq = sequences["s02/box_grab_01"]
    assert test_seq.frames == 6 and test_seq.views == [1, 4, 5, 8]  # a test sequence: eval_frames, eval_views
    assert [test_seq.cameras[v] is None for v in range(9)] == [v not in (1, 4, 5, 8) for v in range(9)]
    assert {(test_seq.cameras[v].width, test_seq.cameras[v].height) for v in test_seq.views} == {(160, 120), (128, 96)}
    assert sorted(p.name for p in (root / "images" / "s02" / "box_grab_01").iterdir()) == ["1", "4", "5", "8"]
    sizes = {(seq.cameras[v].width, seq.cameras[v].height) for v in seq.views}
    assert sizes == {(160, 120), (128, 96)}  # views differ in resolution, as ARCTIC's
    for view in (1, 2):
        image, mask = seq.image(view, 0), seq.mask(view, 0)
        assert image.shape == (seq.cameras[view].height, seq.cameras[view].width, 3) and image.dtype == np.uint8
        assert set(np.unique(mask)) <= {0, 1, 2, 3}
    # subjects differ in shape
    assert not np.allclose(seq.hands["right"].betas[0], sequences["s02/box_grab_01"].hands["right"].betas[0])


def test_annotated_joints_fall_on_the_hand_masks(dataset):
    _, sequences, _ = dataset
    hands = synth.open_hand_assets()[0]
    hits = visible = 0
    for seq in sequences.values():
        for frame in range(seq.frames):
            h, v = joints_on_mask(seq, hands, frame, radius_px=2)
            hits, visible = hits + h, visible + v
    assert visible > 200
    assert hits / visible > 0.97


def test_projected_object_vertices_fall_on_the_object_mask(dataset):
    root, sequences, _ = dataset
    obj = arctic_objects.read_object_template(root, "box")
    on_object = unoccluded = 0
    for seq in sequences.values():
        for frame in range(seq.frames):
            verts = torch.as_tensor(posed_object(seq, obj, [frame])[0])
            for view in seq.views:
                cam, mask = seq.camera(view, frame), seq.mask(view, frame)
                uv, _ = project_points(verts, torch.as_tensor(cam.K), torch.as_tensor(cam.world2cam))
                for u, v in uv.numpy()[::7]:
                    col, row = int(u), int(v)
                    if not (2 <= col < cam.width - 2 and 2 <= row < cam.height - 2):
                        continue
                    window = mask[row - 2:row + 3, col - 2:col + 3]
                    if np.isin(window, [1, 2]).any():  # a hand may hide the object there
                        continue
                    unoccluded += 1
                    on_object += bool((window == 3).any())
    assert unoccluded > 500
    assert on_object / unoccluded > 0.98


@pytest.mark.parametrize("name", ["s01/box_grab_01", "s02/laptop_use_01", "s01/book_use_01", "s02/bottle_use_01"])
def test_grasp_frames_touch_without_penetrating(name):
    cfg = dataclasses.replace(SMOKE, objects=["box", "laptop", "book", "bottle"], actions=["grab", "use"], frames=8,
                              eval_frames=8)
    hands = synth.open_hand_assets()[0]
    plan, subject, obj = synth.plan_for(name, cfg, seed=0)
    distance = ObjectDistance(obj)
    pose = plan.object_pose
    assert plan.grasping.sum() >= 3
    assert all(np.array_equal(plan.hands[side].betas, np.tile(subject.betas, (8, 1))) for side in hands)
    for frame in np.nonzero(plan.grasping)[0]:
        for side, hand in hands.items():
            verts = hand_vertices(hand, plan.hands[side].take(frame))[0]
            closest = distance(verts, pose.articulation[frame], pose.rot[frame], pose.transl[frame])
            assert closest.min() < 0.003, f"{side} hand does not touch in frame {frame}"
            assert closest.min() > -0.005, f"{side} hand penetrates {-closest.min() * 1000:.1f} mm in frame {frame}"
    # away from the grasp the hands are clear of the object
    first = 0
    for side, hand in hands.items():
        verts = hand_vertices(hand, plan.hands[side].take(first))[0]
        assert distance(verts, pose.articulation[first], pose.rot[first], pose.transl[first]).min() > 0.02


def test_annotations_are_jittered_images_are_not(dataset):
    root, sequences, _ = dataset
    name = "s01/box_grab_01"
    clean, _, _ = synth.plan_for(name, SMOKE, seed=0)
    seq = sequences[name]
    offsets = np.linalg.norm(seq.hands["right"].transl - clean.hands["right"].transl, axis=1)
    assert 1e-4 < np.median(offsets) < 5e-3  # ~2 mm RMS mocap-like noise
    assert np.abs(seq.object_pose.transl - clean.object_pose.transl).max() < 0.01
    assert np.array_equal(seq.hands["right"].betas, clean.hands["right"].betas)  # the shape is not jittered


def test_smooth_noise_keeps_its_std_and_correlates_as_a_gaussian_filter():
    # white noise filtered by a unit-energy Gaussian of std s: variance kept, autocorrelation exp(-lag² / 4s²)
    noise = synth.smooth_noise(np.random.default_rng(0), (60, 4000), sigma=0.5, frames_std=4.0)
    assert noise.shape == (60, 4000)
    assert abs(noise.std() - 0.5) < 0.01
    assert abs(noise[:, :].std(axis=1).min() - 0.5) < 0.05  # stationary: the end frames too
    for lag in (1, 4, 8):
        rho = np.mean(noise[:-lag] * noise[lag:]) / 0.25
        assert abs(rho - np.exp(-lag**2 / 64.0)) < 0.03
    white = synth.smooth_noise(np.random.default_rng(0), (60, 4000), sigma=0.5, frames_std=0.0)
    assert abs(np.mean(white[:-1] * white[1:]) / 0.25) < 0.03


@pytest.mark.parametrize("name", ["s02/box_grab_01", "s02/laptop_use_01"])
def test_evaluation_sequences_hold_contact_windows_for_mdev(name):
    # val/test sequences of the default's 45 frames: the annotated (jittered) grasps keep ground-truth
    # contacts for ARCTIC's 15-frame windows, which end before the sequence does
    cfg = dataclasses.replace(SMOKE, objects=["box", "laptop"], actions=["grab", "use"], eval_frames=45)
    hands = synth.open_hand_assets()[0]
    plan, _, obj = synth.plan_for(name, cfg, seed=0)
    annotated = synth.jitter_annotations(plan, cfg, np.random.default_rng(7))
    assert plan.grasping.size == 45 and plan.grasping.sum() >= 15
    with torch.no_grad():
        obj_verts = obj.pose(*annotated.object_pose.torch()).float()
    windows = []
    for side, hand in hands.items():
        verts = torch.as_tensor(hand_vertices(hand, annotated.hands[side])).float()
        dist, idx, _, _ = interaction_field(verts, obj_verts)
        windows.append(contact_windows(dist, idx, obj_verts[0]))
    windows = torch.cat(windows)
    assert len(windows) >= 4  # (i.i.d. jitter of the same size leaves none: contacts flicker at 3 mm)
    assert int(windows[:, 1].max()) < 44 and int((windows[:, 1] - windows[:, 0]).min()) >= 14


def test_deterministic_and_resumable(dataset, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(dataset[0], root)
    image = root / "images" / "s02" / "box_grab_01" / "4" / "00002.jpg"
    other = root / "images" / "s01" / "box_grab_01" / "3" / "00002.jpg"
    before, other_mtime = image.read_bytes(), other.stat().st_mtime_ns
    image.unlink()
    (root / ".done" / "s02__box_grab_01.json").unlink()
    synth.generate(root, SMOKE, seed=0)  # resumes: only the unfinished sequence is redone
    assert image.read_bytes() == before
    assert other.stat().st_mtime_ns == other_mtime
    # a different config starts over in the same folder
    changed = dataclasses.replace(SMOKE, splits={"train": ["s01"], "val": [], "test": []})
    synth.generate(root, changed, seed=0)
    assert not (root / "images" / "s02").exists()


def test_refuses_to_overwrite_a_foreign_folder(tmp_path):
    (tmp_path / "precious.txt").write_text("user data")
    with pytest.raises(FileExistsError, match="not an embedded dataset"):
        synth.generate(tmp_path, SMOKE, seed=0)
    assert (tmp_path / "precious.txt").read_text() == "user data"


@pytest.mark.parametrize("change, message", [
    ({"splits": {"train": ["alice"]}}, "subject names"),
    ({"objects": ["teapot"]}, "unknown"),
    ({"actions": ["throw"]}, "actions"),
    ({"view_scales": [1.0, 1.0]}, "one scale per allocentric view"),
])
def test_config_errors_name_the_field(change, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(SMOKE, **change)
