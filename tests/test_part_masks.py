"""hogsa.data.part_masks: part masks rendered from the annotations agree with the embedded dataset's."""

import dataclasses

import numpy as np
import pytest

from hogsa.data import arctic, arctic_objects, synth
from hogsa.data.part_masks import part_mask, render_part_mask
from hogsa.hand import HandConfig, hand_models
from tests.test_synth import SMOKE

ONE_SEQUENCE = dataclasses.replace(SMOKE, splits={"train": ["s01"], "val": [], "test": []})


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    """(sequence, hands, object) of a one-sequence embedded dataset, its masks rendered from the clean poses."""
    root = tmp_path_factory.mktemp("embedded")
    (name,) = synth.generate(root, ONE_SEQUENCE, seed=0)
    hands = hand_models(HandConfig(None, 0))
    seq = arctic.read_sequence(root, name, hands_mean={side: hand.hands_mean.numpy() for side, hand in hands.items()})
    return seq, hands, arctic_objects.read_object_template(root, "box")


def agreement(seq, shown, hands, obj) -> float:
    """Fraction of the pixels labelled in either mask where ``shown``'s rendered mask equals ``seq``'s, all
    views and frames."""
    same = labelled = 0
    for view in seq.views:
        for frame in range(seq.frames):
            dataset, rendered = seq.mask(view, frame), render_part_mask(shown, view, frame, hands, obj)
            either = (dataset > 0) | (rendered > 0)
            same += int((dataset[either] == rendered[either]).sum())
            labelled += int(either.sum())
    return same / labelled


def test_rendered_masks_agree_with_the_datasets(embedded):
    seq, hands, obj = embedded
    plan, _, _ = synth.plan_for(seq.name, ONE_SEQUENCE, seed=0)
    clean = dataclasses.replace(seq, hands=plan.hands, object_pose=plan.object_pose)
    # the images' own poses: measured 99.8 % (the rest is where the table hides a finger)
    assert agreement(seq, clean, hands, obj) >= 0.99
    # the annotations, 2 mm / 1° off the images' poses: measured 94.9 %
    assert agreement(seq, seq, hands, obj) >= 0.93


def test_an_unannotated_hand_is_left_out(embedded):
    seq, hands, obj = embedded
    both = render_part_mask(seq, 1, 1, hands, obj)
    assert {1, 2, 3} <= set(np.unique(both))
    valid = dict(seq.hand_valid, left=np.zeros(seq.frames, bool))
    right_only = render_part_mask(dataclasses.replace(seq, hand_valid=valid), 1, 1, hands, obj)
    assert 2 not in right_only
    np.testing.assert_array_equal(right_only[both != 2], both[both != 2])  # nothing else changes


def test_the_datasets_mask_is_used_when_it_has_one(embedded):
    seq, hands, obj = embedded
    np.testing.assert_array_equal(part_mask(seq, 2, 0, hands, obj), seq.mask(2, 0))
    without = dataclasses.replace(seq, mask_file=None)
    np.testing.assert_array_equal(part_mask(without, 2, 0, hands, obj), render_part_mask(seq, 2, 0, hands, obj))
