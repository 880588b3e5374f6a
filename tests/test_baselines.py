"""The baselines' networks: backbones (shapes, torchvision-compatible ResNet-50, weight loading)."""

import pytest
import torch
from safetensors.torch import save_file

from hogsa.baselines.backbone import load_backbone_weights, resnet


def test_resnet50_has_torchvisions_parameter_count_and_2048_features():
    backbone = resnet("resnet50")
    # torchvision's resnet50 has 25,557,032 parameters, 2,049,000 of them in the classifier
    assert sum(p.numel() for p in backbone.parameters()) == 25_557_032 - 2_049_000
    assert backbone.out_features == 2048


def test_the_small_backbone_pools_features_of_any_input_size():
    backbone = resnet("small", width=8).eval()
    for size in (64, 96):
        assert backbone(torch.rand(2, 3, size, size)).shape == (2, 64)


def test_weights_round_trip_through_safetensors_and_mismatches_are_named(tmp_path):
    source, target = resnet("small", width=8).eval(), resnet("small", width=8).eval()
    path = tmp_path / "backbone.safetensors"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()} | {"fc.weight": torch.zeros(3, 64)}, path)
    load_backbone_weights(target, path)
    images = torch.rand(1, 3, 64, 64)
    assert torch.equal(source(images), target(images))
    with pytest.raises(ValueError, match="backbone.safetensors.*shape differs"):
        load_backbone_weights(resnet("small", width=16), path)
    with pytest.raises(ValueError, match="'small' or 'resnet50'"):
        resnet("vgg")
