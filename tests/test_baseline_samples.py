"""The baselines' crops (camera-frame annotations agree with the world ones seen through the crop camera),
their augmentation, training (resumable to the same weights, and fitting), and saved predictions that
re-evaluate to the same numbers."""

import numpy as np
import pytest
import torch

from hogsa.augment.shards import hands_means, write_one_frame
from safetensors.torch import load_file

from hogsa.baselines import evaluate
from hogsa.baselines import train as train_module
from hogsa.baselines.samples import hands_to_camera, object_to_camera, sequence_crops, training_crops
from hogsa.baselines.train import (TASKS, BaselinesConfig, augment, build_model, contact_pairs, field_targets,
                                   train_baseline)
from hogsa.data import arctic, arctic_objects, synth
from hogsa.data.crops import CropBox, crop_camera
from hogsa.data.schema import SIDES, Camera
from hogsa.geometry import project_points
from hogsa.hand import HandModel, hand_vertices
from hogsa.metrics import arctic as arctic_metrics
from test_synth import SMOKE

VIEWS = list(range(1, 9))


@pytest.fixture(scope="module")
def sequence(tmp_path_factory):
    root = tmp_path_factory.mktemp("embedded")
    names = synth.generate(root, SMOKE, seed=0)
    models = {side: HandModel(side) for side in SIDES}
    seq = arctic.read_sequence(root, names[0])
    return seq, models, arctic_objects.read_object_template(root, seq.object_name)


def test_camera_frame_poses_are_the_world_poses_seen_by_the_camera(sequence):
    seq, models, obj = sequence
    world2cam = seq.camera(3, 0).world2cam
    hands = hands_to_camera(seq.hands, models, world2cam)
    for side in SIDES:
        world = hand_vertices(models[side], seq.hands[side])
        expected = world @ world2cam[:3, :3].T + world2cam[:3, 3]
        assert np.abs(hand_vertices(models[side], hands[side]) - expected).max() < 1e-5
    posed = obj.pose(*object_to_camera(seq.object_pose, world2cam).torch(torch.float64)).numpy()
    world = obj.pose(*seq.object_pose.torch(torch.float64)).numpy()
    assert np.abs(posed - (world @ world2cam[:3, :3].T + world2cam[:3, 3])).max() < 1e-9


def project(K: np.ndarray, points: np.ndarray) -> np.ndarray:  # [3, 3], [N, 3] camera frame -> [N, 2] pixels
    uv, _ = project_points(torch.as_tensor(points), torch.as_tensor(K), torch.eye(4, dtype=torch.float64))
    return uv.numpy()


def test_every_frame_of_every_view_is_cropped_around_its_hands(sequence):
    seq, models, obj = sequence
    crops = sequence_crops(seq, VIEWS, models, obj, size=48, margin=0.1)
    assert len(crops) == len(VIEWS) * seq.frames and crops.images.shape[1:] == (48, 48, 3)
    assert crops.source[seq.frames + 2] == f"{seq.name}:2:2"
    for row in range(len(crops)):
        _, view, frame = crops.source[row].rsplit(":", 2)
        camera = seq.camera(int(view), int(frame))
        for side in SIDES:
            joints = models[side](*crops.hands[side].take(np.array([row])).torch()).joints[0].double().numpy()
            uv = project(crops.K[row], joints)
            world = models[side](*seq.hands[side].take(np.array([int(frame)])).torch()).joints[0].double().numpy()
            uv_full, _ = project_points(torch.as_tensor(world), torch.as_tensor(camera.K), torch.as_tensor(camera.world2cam))
            scale = crops.K[row, 0, 0] / camera.K[0, 0]  # the crop maps the view's pixels by a scale and a shift
            shift = crops.K[row, :2, 2] - camera.K[:2, 2] * scale
            assert np.abs(uv - (uv_full.numpy() * scale + shift)).max() < 1e-3
            assert (uv > -5).all() and (uv < 53).all()  # the hands are inside the crop (its margin aside)


def test_a_crop_written_as_a_one_frame_sequence_reads_back_with_the_same_annotations(sequence, tmp_path):
    seq, models, obj = sequence
    camera = crop_camera(seq.camera(5, 1), CropBox(40, 10, 80), 64)
    image = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    frame = np.array([1])
    write_one_frame(tmp_path, "s01/box_aug00000_00", seq, camera, {s: seq.hands[s].take(frame) for s in SIDES},
                    seq.object_pose.take(frame), image, np.zeros((64, 64), np.uint8), 95, hands_means(models))
    crops = training_crops(tmp_path, ["s01/box_aug00000_00"], models, size=32)
    assert crops.images.shape == (1, 32, 32, 3)
    assert np.allclose(crops.K[0], crop_camera(Camera(camera.K, camera.world2cam, 64, 64), CropBox(0, 0, 64), 32).K)
    expected = hands_to_camera({s: seq.hands[s].take(frame) for s in SIDES}, models, camera.world2cam)
    for side in SIDES:
        assert np.allclose(hand_vertices(models[side], crops.hands[side]), hand_vertices(models[side], expected[side]),
                           atol=1e-5)
    assert crops.object_name.tolist() == [seq.object_name] and crops.valid.all()


def small_config(**changes) -> BaselinesConfig:
    values = dict(tasks=list(TASKS), train_sets=["original"], seeds=[0], backbone="small", width=8, hmr_width=64,
                  field_width=32, backbone_weights=None, image_size=48, steps=6, batch_size=4, lr=1e-3,
                  cosine_lr=True, root_weight=10.0, grad_clip=150.0,
                  checkpoint_every=3, aug_scale=0.2, aug_rotation_deg=20.0, aug_color=0.3, hand_points=40,
                  object_points=50, eval_margin=0.1)
    return BaselinesConfig(**(values | changes))


def test_the_augmentation_moves_the_annotations_with_the_pixels(sequence):
    seq, models, obj = sequence
    crops = sequence_crops(seq, [2], models, obj, size=48, margin=0.1).take(np.arange(3))
    images = torch.zeros(3, 3, 48, 48)
    wrists = []
    for row in range(3):  # one bright pixel where the right wrist projects
        joints = models["right"](*crops.hands["right"].take(np.array([row])).torch()).joints[0].double().numpy()
        col, line = np.floor(project(crops.K[row], joints[:1])[0]).astype(int)
        images[row, :, line, col] = 1.0
        wrists.append((col, line))
    cfg = small_config(aug_color=0.0)
    moved, warped = augment(crops, images, cfg, models, torch.Generator().manual_seed(4))
    assert not np.allclose(moved.K, crops.K)
    for row in range(3):
        joints = models["right"](*moved.hands["right"].take(np.array([row])).torch()).joints[0].double().numpy()
        expected = project(moved.K[row], joints[:1])[0]
        brightest = np.unravel_index(int(warped[row, 0].argmax()), (48, 48))[::-1]
        assert np.abs(np.array(brightest) + 0.5 - expected).max() < 1.5, (row, brightest, expected, wrists[row])


@pytest.mark.parametrize("task", TASKS)
def test_a_training_run_interrupted_after_a_checkpoint_resumes_to_the_same_weights(sequence, tmp_path, monkeypatch, task):
    seq, models, obj = sequence
    crops = sequence_crops(seq, [1, 4], models, obj, size=48, margin=0.1)
    objects = {seq.object_name: obj}
    cfg = small_config()
    count = obj.vertices.shape[0]
    supervision = (contact_pairs(crops, models, objects) if task == "arcticnet_sf"
                   else field_targets(crops, models, objects, count))
    train_baseline(task, cfg, crops, supervision, tmp_path / "whole", 0, models, objects, count)

    saved = train_module.save_checkpoint

    def save_then_die(*args, **kwargs):
        saved(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train_baseline(task, cfg, crops, supervision, tmp_path / "resumed", 0, models, objects, count)
    monkeypatch.undo()
    train_baseline(task, cfg, crops, supervision, tmp_path / "resumed", 0, models, objects, count)
    whole, resumed = (load_file(tmp_path / d / "model.safetensors") for d in ("whole", "resumed"))
    assert whole.keys() == resumed.keys() and all(torch.equal(whole[k], resumed[k]) for k in whole)
    assert (tmp_path / "whole/live/plots/metrics/train/loss.tsv").read_text() == \
        (tmp_path / "resumed/live/plots/metrics/train/loss.tsv").read_text()
    if task == "interfield_sf":
        model = train_baseline(task, cfg, crops, supervision, tmp_path / "resumed", 0, models, objects, count)
        pred = evaluate.predict(task, model, crops, 48, models, objects, cfg.object_points)
        assert pred["dist_ro"][0].shape == (models["right"].v_template.shape[0],)
        assert pred["dist_or"][0].shape == (count,)


def test_arcticnet_sf_fits_a_few_crops(sequence, tmp_path):
    seq, models, obj = sequence
    crops = sequence_crops(seq, [1], models, obj, size=48, margin=0.1)
    objects = {seq.object_name: obj}
    cfg = small_config(steps=40, checkpoint_every=40, aug_scale=0.0, aug_rotation_deg=0.0, aug_color=0.0)
    model = train_baseline("arcticnet_sf", cfg, crops, contact_pairs(crops, models, objects), tmp_path / "run", 0,
                           models, objects, obj.vertices.shape[0])
    losses = [float(line.split("\t")[-1]) for line in
              (tmp_path / "run/live/plots/metrics/train/loss.tsv").read_text().splitlines()[1:]]
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
    torch.manual_seed(0)
    untrained = build_model("arcticnet_sf", cfg, models, 0).eval()
    target = evaluate.targets(crops, models, objects)
    scores = {}
    for name, net in (("trained", model), ("untrained", untrained)):
        pred = evaluate.predict("arcticnet_sf", net, crops, 48, models, objects, cfg.object_points)
        evaluate.save_predictions(tmp_path / name, crops, pred, target, objects)
        scores[name] = evaluate.score_folder(tmp_path / name)
    assert scores["trained"]["mpjpe"] < scores["untrained"]["mpjpe"]
    assert scores["trained"]["mrrpe_ro"] < scores["untrained"]["mrrpe_ro"]


def test_saved_predictions_re_evaluate_to_the_numbers_of_the_arrays_in_memory(sequence, tmp_path):
    seq, models, obj = sequence
    crops = sequence_crops(seq, [1, 6], models, obj, size=48, margin=0.1)
    objects = {seq.object_name: obj}
    target = evaluate.targets(crops, models, objects)
    pred = {key: [row.copy() for row in target[key]] for key in arctic_metrics.POSE_KEYS}
    for row in pred["joints_l"]:
        row[3] += [0.0, 0.021, 0.0]  # 1 mm of MPJPE on the left hand
    written = evaluate.save_predictions(tmp_path, crops, pred, target, objects)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in written) == [f"{seq.name}/1.npz", f"{seq.name}/6.npz"]
    scores = evaluate.score_folder(tmp_path)
    assert scores["mpjpe"] == pytest.approx(0.5)  # the right hand is exact: (0 + 1) / 2 per frame
    assert scores["success_rate"] == 100.0 and scores["mrrpe_ro"] == pytest.approx(0.0, abs=1e-6)
    frames = []
    for view in (1, 6):
        rows = [r for r, s in enumerate(crops.source) if s.startswith(f"{seq.name}:{view}:")]
        t = {k: np.stack([target[k][r] for r in rows]) for k in target}
        t |= {"obj_bottom": ~obj.top_mask.numpy(), "obj_diameter": obj.diameter}
        frames.append(arctic_metrics.evaluate_frames({k: np.stack([pred[k][r] for r in rows]) for k in pred}, t))
    # the files hold float32: the arrays in memory score alike to float32's precision, and the
    # in-memory path (the val split's) to the bit
    for key, value in arctic_metrics.aggregate(frames).items():
        assert scores[key] == pytest.approx(value, rel=1e-4, abs=1e-4, nan_ok=True), key
    assert repr(evaluate.score(evaluate.per_view(crops, pred, target, objects).values())) == repr(scores)


def test_the_learning_rate_falls_along_a_half_cosine_or_stays():
    cfg = small_config(lr=0.02, steps=10)
    rates = [train_module.learning_rate(cfg, step) for step in range(10)]
    assert rates[0] == 0.02 and rates[5] == pytest.approx(0.01) and rates[-1] == pytest.approx(0.01 * (1 - np.cos(np.pi / 10)))
    assert all(a > b for a, b in zip(rates, rates[1:]))
    assert {train_module.learning_rate(small_config(lr=0.02, cosine_lr=False), step) for step in range(6)} == {0.02}
