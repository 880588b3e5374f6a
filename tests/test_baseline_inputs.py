"""The baselines' inputs: crops files that read back as they were written, batched ground-truth fields
equal to the per-crop ones, a sequence's field shared by its views, and targets carrying it."""

import numpy as np
import pytest
import torch

from hogsa.baselines import evaluate
from hogsa.baselines.inputs import (SEPARATOR, load_crop_fields, load_crops, load_fields, save_crop_fields, save_crops,
                                    save_npz, sequence_field)
from hogsa.baselines.samples import sequence_crops
from hogsa.baselines.train import contact_pairs, crop_fields, field_targets
from hogsa.data import arctic, arctic_objects, synth
from hogsa.data.schema import SIDES
from hogsa.hand import HandModel
from hogsa.metrics import arctic as arctic_metrics
from test_synth import SMOKE


@pytest.fixture(scope="module")
def crops_of_a_sequence(tmp_path_factory):
    root = tmp_path_factory.mktemp("embedded")
    names = synth.generate(root, SMOKE, seed=0)
    models = {side: HandModel(side) for side in SIDES}
    seq = arctic.read_sequence(root, names[0])
    obj = arctic_objects.read_object_template(root, seq.object_name)
    return seq, models, obj, sequence_crops(seq, [2, 5], models, obj, size=32, margin=0.1)


def test_a_crops_file_reads_back_to_the_same_arrays(crops_of_a_sequence, tmp_path):
    _, _, _, crops = crops_of_a_sequence
    save_crops(tmp_path / "c.npz", crops)
    back = load_crops(tmp_path / "c.npz")
    assert np.array_equal(back.images, crops.images) and np.array_equal(back.K, crops.K)
    assert back.source.tolist() == crops.source.tolist() and back.object_name.tolist() == crops.object_name.tolist()
    for side in SIDES:
        assert all(np.array_equal(a, b) for a, b in zip(back.hands[side], crops.hands[side]))
        assert np.array_equal(back.hand_valid[side], crops.hand_valid[side])
    assert all(np.array_equal(a, b) for a, b in zip(back.object_pose, crops.object_pose))


def test_a_crops_file_without_a_field_names_the_file_and_the_field(crops_of_a_sequence, tmp_path):
    _, _, _, crops = crops_of_a_sequence
    save_crops(tmp_path / "c.npz", crops)
    with np.load(tmp_path / "c.npz") as data:
        arrays = {k: data[k] for k in data.files if k != "K"}
    save_npz(tmp_path / "bad.npz", arrays)
    with pytest.raises(ValueError, match=r"bad\.npz: a crops file lacks the fields \['K'\]"):
        load_crops(tmp_path / "bad.npz")
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        load_crops(tmp_path / "missing.npz")


def test_batched_fields_equal_each_crop_computed_alone(crops_of_a_sequence):
    _, models, obj, crops = crops_of_a_sequence
    objects = {crops.object_name[0]: obj}
    batched = crop_fields(crops, models, objects)
    for row in range(len(crops)):
        obj_verts = obj.pose(*crops.object_pose.take(np.array([row])).torch())
        for side in SIDES:
            verts = models[side](*crops.hands[side].take(np.array([row])).torch()).vertices
            dist_ho, idx_ho, dist_oh, _ = arctic_metrics.interaction_field(verts, obj_verts)
            got = batched[side][row]
            assert torch.allclose(got[0], dist_ho[0], atol=1e-6) and torch.allclose(got[2], dist_oh[0], atol=1e-6)
            assert (got[1] == idx_ho[0]).float().mean() > 0.99  # ties between equidistant vertices aside
    pairs = contact_pairs(crops, models, objects)
    fields = field_targets(crops, models, objects, obj.vertices.shape[0] + 7)
    for row in range(len(crops)):
        dist, idx, dist_oh = batched["right"][row]
        contact = (dist <= arctic_metrics.CONTACT_THRES).nonzero().view(-1)
        assert torch.equal(pairs["right"][row][0], contact) and torch.equal(pairs["right"][row][1], idx[contact])
        assert torch.equal(fields["or"][row, :len(dist_oh)], dist_oh) and (fields["or"][row, len(dist_oh):] == 0).all()
    assert fields["mask"].sum(1).tolist() == [float(obj.vertices.shape[0])] * len(crops)


def test_a_sequence_field_serves_every_view_and_the_targets_carry_it(crops_of_a_sequence, tmp_path):
    seq, models, obj, crops = crops_of_a_sequence
    field = sequence_field(seq, models, obj)
    assert field["dist_ro"].shape == (seq.frames, models["right"].v_template.shape[0])
    assert field["idx_ro"].dtype == np.int64 and field["dist_or"].shape == (seq.frames, obj.vertices.shape[0])
    save_npz(tmp_path / "f.npz", {f"{seq.name}{SEPARATOR}{k}": v for k, v in field.items()})
    fields = load_fields(tmp_path / "f.npz")
    objects = {seq.object_name: obj}
    target = evaluate.targets(crops, models, objects, fields)
    plain = evaluate.targets(crops, models, objects)
    for row in range(len(crops)):
        # the field of the crop's own camera-frame meshes: distances do not depend on the view
        verts = torch.as_tensor(plain["verts_r"][row][None]).float()
        dist_ro, _, dist_or, _ = arctic_metrics.interaction_field(verts, torch.as_tensor(plain["obj_verts"][row][None]).float())
        assert np.abs(target["dist_ro"][row] - dist_ro[0].numpy()).max() < 1e-5
        assert np.abs(target["dist_or"][row] - dist_or[0].numpy()).max() < 1e-5
    # scoring with the carried field gives the numbers of the field computed per view
    pred = {key: [row.copy() for row in plain[key]] for key in arctic_metrics.POSE_KEYS}
    for row in pred["verts_r"]:
        row += [0.0, 0.002, 0.0]  # 2 mm off: CDev and MDev see it
    carried = evaluate.score(evaluate.per_view(crops, pred, target, objects).values())
    computed = evaluate.score(evaluate.per_view(crops, pred, plain, objects).values())
    assert carried.keys() == computed.keys()
    for key in carried:
        assert carried[key] == pytest.approx(computed[key], rel=1e-4, abs=1e-6, nan_ok=True), key


def test_saved_crop_fields_read_back_and_supervise_alike(crops_of_a_sequence, tmp_path):
    _, models, obj, crops = crops_of_a_sequence
    objects = {crops.object_name[0]: obj}
    fields = crop_fields(crops, models, objects)
    save_crop_fields(tmp_path / "f.npz", fields)
    back = load_crop_fields(tmp_path / "f.npz")
    for side in SIDES:
        assert all(torch.equal(a, b) for row, again in zip(fields[side], back[side]) for a, b in zip(row, again))
    count = obj.vertices.shape[0] + 3
    assert all(torch.equal(a, b) for a, b in zip(field_targets(crops, models, objects, count).values(),
                                                 field_targets(crops, models, objects, count, back).values()))
