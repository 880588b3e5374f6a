"""The augmentation: backgrounds, compositing, part labels, the renders of a batch, the written ARCTIC
sequences and manifests of the smoke study, mask agreement with the geometry, and the Ray executor."""

import dataclasses
import hashlib
import json

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from hogsa.augment.backgrounds import BackgroundBank, JitterConfig
from hogsa.augment.executors import IDENTITY_FILE, prepare_outputs
from hogsa.augment.plan import AugmentConfig, Shard
from hogsa.augment.render import Layers, composite, gaussian_layers, labels
from hogsa.augment.shards import AugmentInputs, plan_shard, shard_context
from hogsa.config import load_params, section
from hogsa.data.arctic import read_sequence
from hogsa.data.schema import EGO_VIEW, SIDES
from hogsa.pom.grasps import Grasps
from hogsa.report.augment import augment, mask_agreement, read_manifest
from hogsa.report.paths import AugmentPaths

JITTER = JitterConfig(brightness=0.3, contrast=0.3, saturation=0.3, hue=0.05, min_fraction=0.35)
POM_VARIANTS = ("full", "no_srm", "3dgs", "oracle")  # the same poses, cameras and backgrounds


def test_the_builtin_backgrounds_hold_at_least_50_distinct_images():
    bank = BackgroundBank(None, JITTER)
    digests = {hashlib.sha256(bank.source(k).tobytes()).hexdigest() for k in range(len(bank))}
    assert len(bank) >= 50 and len(digests) == len(bank)
    assert all(bank.source(k).dtype == np.uint8 and bank.source(k).shape[2] == 3 for k in range(len(bank)))


def test_a_background_depends_on_its_key_alone(tmp_path):
    bank = BackgroundBank(None, JITTER)
    first, name = bank.sample(48, 0, "s01/box", "pom:3", 1)
    bank.sample(48, 0, "s01/box", "pom:4", 0)  # another sample drawn in between changes nothing
    again, again_name = BackgroundBank(None, JITTER).sample(48, 0, "s01/box", "pom:3", 1)
    assert torch.equal(first, again) and name == again_name
    assert first.shape == (3, 48, 48) and 0 <= first.min() and first.max() <= 1
    others = [bank.sample(48, 0, "s01/box", "pom:3", slot)[0] for slot in range(2, 6)]
    assert all(not torch.equal(first, other) for other in others)

    for k, color in enumerate([(255, 0, 0), (0, 0, 255)]):  # a folder of images
        Image.new("RGB", (60, 40), color).save(tmp_path / f"{k}.png")
    folder = BackgroundBank(tmp_path, dataclasses.replace(JITTER, brightness=0, contrast=0, saturation=0, hue=0))
    image, source = folder.sample(16, 0, "key")
    expected = torch.tensor([1.0, 0, 0] if source == "0.png" else [0, 0, 1.0])[:, None, None].expand(3, 16, 16)
    assert source in {"0.png", "1.png"} and torch.allclose(image, expected, atol=1e-5)
    with pytest.raises(FileNotFoundError, match="augment.backgrounds"):
        BackgroundBank(tmp_path / "missing", JITTER)


def test_premultiplied_compositing_leaves_no_dark_fringe():
    alpha = torch.linspace(0, 1, 16).reshape(1, 1, 4, 4)
    color = torch.tensor([0.2, 0.6, 0.9])[None, :, None, None]
    layers = Layers(color * alpha, alpha, torch.zeros(1, 3, 4, 4))
    same = composite(layers, color.expand(1, 3, 4, 4))  # a render over a background of its own colour
    assert torch.allclose(same, color.expand(1, 3, 4, 4), atol=1e-6)
    black = composite(layers, torch.zeros(1, 3, 4, 4))
    assert torch.allclose(black, color * alpha, atol=1e-6)


def test_labels_take_the_part_of_largest_coverage_where_alpha_exceeds_half():
    parts = torch.tensor([[0.6, 0.1, 0.2, 0.0], [0.1, 0.5, 0.1, 0.0], [0.0, 0.1, 0.15, 0.0]])[None, :, None, :]
    layers = Layers(torch.zeros(1, 3, 1, 4), parts.sum(1, keepdim=True), parts)
    assert labels(layers).tolist() == [[[1, 2, 0, 0]]]  # the third pixel's alpha is 0.45: background


@pytest.fixture(scope="module")
def smoke_context(smoke_study, smoke_params):
    params = load_params(smoke_params)
    inputs = AugmentInputs(*(str(smoke_study / p) for p in ("data/index.json", "data/pom/poses.npz",
                                                             "data/models/hogs", "data/models/srm", "data/augment")))
    return shard_context(json.dumps(params, sort_keys=True), inputs)


def test_a_batch_render_is_the_models_own_render_with_part_coverage_summing_to_alpha(smoke_context, monkeypatch):
    monkeypatch.setenv("HOGSA_NO_COMPILE", "1")  # both eager: tests/test_render.py checks the compiled path
    group = smoke_context.index.groups("train")[0]
    planned, _ = plan_shard(smoke_context, Shard("hogs", group, 0, 2))
    poses = smoke_context.pose_set("hogs", group)
    grasps = poses.grasps.take(np.array([p.pose for p in planned]))
    cameras = [p.render_camera for p in planned]
    model = smoke_context.model(group, "hogs")
    layers = gaussian_layers(model, grasps, cameras)
    right, left = (grasps.hands[s].torch() for s in SIDES)
    obj = grasps.object_pose.torch()
    with torch.no_grad():
        reference = model.render_frames(cameras, right, left, obj)
    assert torch.allclose(layers.rgb, reference.rgb.clamp(0, 1), atol=1e-5)
    assert torch.allclose(layers.alpha[:, 0], reference.alpha, atol=1e-5)
    assert torch.allclose(layers.parts.sum(1), layers.alpha[:, 0], atol=1e-5)
    assert (layers.parts[:, 0] > 0.5).any() and (layers.parts[:, 2] > 0.5).any()  # a hand and the object in view


def test_the_stage_writes_the_arctic_sequences_its_manifest_describes(smoke_study, smoke_params):
    params = load_params(smoke_params)
    cfg = section(params, "augment", AugmentConfig)
    metrics = json.loads((smoke_study / "reports/metrics/augment.json").read_text())
    poses = Grasps.load(smoke_study / "data/pom/poses.npz")
    manifests = {v: read_manifest(smoke_study / "data/augment", v) for v in cfg.variants}
    for variant, lines in manifests.items():
        root = smoke_study / "data/augment" / variant
        assert len(lines) == metrics[variant]["written"] > 0
        for line in lines:
            for kind in ("image", "mask"):
                assert hashlib.sha256((root / line[kind]).read_bytes()).hexdigest() == line[f"{kind}_sha256"]
            seq = read_sequence(root, line["sample"])
            camera = seq.camera(EGO_VIEW, 0)
            assert np.allclose(camera.K, line["camera"]["K"]) and np.allclose(camera.world2cam, line["camera"]["world2cam"])
            assert (camera.width, camera.height) == (cfg.image_size, cfg.image_size)
            assert np.asarray(Image.open(root / line["image"])).shape == (cfg.image_size, cfg.image_size, 3)
            if line["pose"].startswith("pom:"):  # the written pose is POM's, read back
                row = int(line["pose"].split(":")[1])
                for side in SIDES:
                    assert np.allclose(seq.hands[side].hand_pose, poses.hands[side].hand_pose[row], atol=1e-6)
                assert np.allclose(seq.object_pose.transl, poses.object_pose.transl[row], atol=1e-6)
                assert line["plausibility"]["passes"] is True
    keys = {v: [(line["sample"], line["background"], line["camera"]["K"]) for line in manifests[v]] for v in POM_VARIANTS}
    assert all(keys[v] == keys["full"] for v in POM_VARIANTS)
    assert metrics["original_crops"] == metrics["original_train_images"]


def test_oracle_masks_agree_with_the_geometry_and_the_smoke_hogs_masks_mostly(smoke_study, smoke_context):
    out = smoke_study / "data/augment"
    oracle = mask_agreement(out, "oracle", smoke_context.hands, smoke_context.index, 8)
    assert oracle["joints_on_hand_mask"] >= 0.98 and oracle["object_vertices_on_object_mask"] >= 0.98
    full = mask_agreement(out, "full", smoke_context.hands, smoke_context.index, 8)
    assert full["joints_on_hand_mask"] >= 0.8  # 12 training steps on 32² crops


def test_outputs_of_another_identity_are_cleared(tmp_path):
    (tmp_path / "full" / "shards").mkdir(parents=True)
    (tmp_path / "full" / "shards" / "a.json").write_text("{}")
    prepare_outputs(tmp_path, ["full"], "one")
    assert not (tmp_path / "full" / "shards").exists()
    (tmp_path / "full" / "kept").write_text("x")
    prepare_outputs(tmp_path, ["full"], "one")
    assert (tmp_path / "full" / "kept").exists()
    assert json.loads((tmp_path / "full" / IDENTITY_FILE).read_text()) == {"identity": "one"}


def test_unknown_variants_are_refused_by_name(smoke_params):
    params = load_params(smoke_params)
    params["augment"]["variants"] = ["full", "mirror"]
    with pytest.raises(ValueError, match="augment.variants"):
        section(params, "augment", AugmentConfig)


@pytest.mark.slow
def test_the_ray_executor_writes_the_bytes_of_the_local_one(smoke_study, smoke_params, tmp_path, monkeypatch):
    monkeypatch.setenv("HOGSA_NO_COMPILE", "1")  # as the smoke study ran; Ray's workers inherit it
    params = load_params(smoke_params)
    params["augment"]["executor"] = "ray"
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(params))
    paths = AugmentPaths(*(str(smoke_study / p) for p in ("data/index.json", "data/pom/poses.npz", "data/models/hogs",
                                                           "data/models/srm")),
                         out_dir=str(tmp_path / "augment"), crops_dir=str(tmp_path / "crops"),
                         report_dir=str(tmp_path / "report"), metrics=str(tmp_path / "m.json"),
                         timings=str(tmp_path / "t.json"))
    augment(params, paths)
    for variant in params["augment"]["variants"]:
        local = (smoke_study / "data/augment" / variant / "manifest.jsonl").read_text()
        assert (tmp_path / "augment" / variant / "manifest.jsonl").read_text() == local
