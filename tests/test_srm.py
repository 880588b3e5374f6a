"""SRM: modulated convolution, StyleUNet, discriminator, losses (R1 against a closed form), training
with checkpoints and resume, refinement and pairs helpers. Tiny networks on tiny images."""

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from hogsa.hogs.train import load_trained
from hogsa.metrics.scores import image_scores
from hogsa.srm import train as srm_train
from hogsa.srm.discriminator import Discriminator, DiscriminatorConfig, blur_downsample, minibatch_stddev
from hogsa.srm.losses import (
    VGGPerceptual,
    d_logistic_loss,
    g_nonsaturating_loss,
    r1_penalty,
)
from hogsa.srm.pairs import RenderPairs, model_path
from hogsa.srm.styleunet import ModulatedConv2d, StyleUNet, StyleUNetConfig, modulated_conv2d
from hogsa.srm.train import (
    CHECKPOINT,
    SRMConfig,
    SRMReportConfig,
    build_srm,
    lr_factor,
    refine,
    train_srm,
)
from hogsa.training import checkpoint_metadata

TINY_G = StyleUNetConfig(width=4, depth=2, max_channels=8, style_dim=8, mapping_layers=2)
TINY_D = DiscriminatorConfig(width=4, depth=2, max_channels=8)


def _config(**changes) -> SRMConfig:
    cfg = SRMConfig(generator=TINY_G, discriminator=TINY_D, iterations=8, batch_size=4, lr=2e-3,
                    lr_schedule="constant", betas=[0.0, 0.99], lambda_l1=5.0, lambda_vgg=0.03, lambda_gan=1.0,
                    gan_start=2, r1_gamma=10.0, r1_every=2, vgg_weights=None, eval_every=4, checkpoint_every=4, workers=1,
                    report=SRMReportConfig(dpi=60, image_inches=1.0, grid_crops=2, zoom=2.0, tuned_on=[]))
    return dataclasses.replace(cfg, **changes)


def _pairs(n: int = 12, size: int = 16, seed: int = 0) -> RenderPairs:
    """Smooth random targets; renders are a dimmed copy (a colour error the SRM can learn to undo), with an
    alpha mask of the bright pixels."""
    generator = torch.Generator().manual_seed(seed)
    target = F.interpolate(torch.rand(n, 3, 4, 4, generator=generator), size=size, mode="bilinear")
    rgb = 0.7 * target + 0.05
    alpha = (target.mean(dim=1, keepdim=True) > 0.5).float()
    return RenderPairs(rgb, alpha, target, tuple(f"s0{i % 2}/cube" for i in range(n)))


# --------------------------------------------------------------------------- #
# Modulated convolution and the generator
# --------------------------------------------------------------------------- #
def test_modulated_conv_without_demodulation_and_unit_style_is_a_plain_convolution():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, 9, 7, generator=generator)
    weight = torch.randn(4, 5, 3, 3, generator=generator)
    out = modulated_conv2d(x, weight, torch.ones(3, 5), demodulate=False)
    assert torch.allclose(out, F.conv2d(x, weight, padding=1), atol=1e-5)
    # the module: an affine map of w that gives exactly 1 (zero weights, bias 1), then its bias
    layer = ModulatedConv2d(5, 4, 3, style_dim=6, demodulate=False)
    with torch.no_grad():
        layer.affine.weight.zero_()
        layer.bias.copy_(torch.randn(4, generator=generator))
    expected = F.conv2d(x, layer.weight * layer.scale, layer.bias, padding=1)
    assert torch.allclose(layer(x, torch.randn(3, 6, generator=generator)), expected, atol=1e-5)


def test_modulated_conv_matches_per_sample_modulated_and_demodulated_weights():
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(3, 5, 8, 8, generator=generator)
    weight = torch.randn(4, 5, 3, 3, generator=generator)
    style = torch.rand(3, 5, generator=generator) + 0.5
    out = modulated_conv2d(x, weight, style, demodulate=True)
    for b in range(3):  # StyleGAN2's definition, one sample at a time
        w = weight * style[b][None, :, None, None]
        w = w / (w.square().sum(dim=(1, 2, 3), keepdim=True) + 1e-8).sqrt()
        assert torch.allclose(out[b], F.conv2d(x[b:b + 1], w, padding=1)[0], atol=1e-5)


def test_styleunet_starts_at_identity_then_learns_a_residual():
    torch.manual_seed(0)
    net = StyleUNet(TINY_G)
    rgb, alpha = torch.rand(2, 3, 16, 24), torch.rand(2, 1, 16, 24)
    # zero "to RGB" layers: the input comes through unchanged. Exact: every "to RGB" convolution has zero weights
    # and bias, so the residual is exactly 0 and rgb + 0 is rgb
    assert torch.equal(net(rgb, alpha), rgb)
    with pytest.raises(ValueError, match="multiples of 8"):
        net(torch.rand(1, 3, 12, 16), torch.rand(1, 1, 12, 16))
    with torch.no_grad():
        for block in net.decoder:
            block.to_rgb.weight.normal_()
    out = net(rgb, alpha)
    assert out.shape == rgb.shape and not torch.allclose(out, rgb)
    out.square().mean().backward()
    assert net.from_input.weight.grad.abs().sum() > 0 and net.mapping[0].weight.grad.abs().sum() > 0
    # each output pixel depends on the alpha too (the edge is part of what the SRM sees)
    other = net(rgb, 1.0 - alpha)
    assert not torch.allclose(other, out)


# --------------------------------------------------------------------------- #
# Discriminator and losses
# --------------------------------------------------------------------------- #
def test_discriminator_parts():
    torch.manual_seed(0)
    disc = Discriminator(TINY_D, 16)
    assert disc(torch.rand(6, 3, 16, 16)).shape == (6,)
    with pytest.raises(ValueError, match="crop 20"):
        Discriminator(TINY_D, 20)
    constant = torch.full((1, 2, 8, 8), 0.3)
    down = blur_downsample(constant)
    assert down.shape == (1, 2, 4, 4) and torch.allclose(down[..., 1:-1, 1:-1], torch.tensor(0.3))  # normalised filter
    # minibatch stddev: the std over each group of 4 images, averaged over features and pixels
    x = torch.randn(8, 3, 2, 2, generator=torch.Generator().manual_seed(2))
    stats = minibatch_stddev(x)[:, -1, 0, 0]
    groups = x.reshape(4, 2, 3, 2, 2)
    expected = groups.var(dim=0, unbiased=False).add(1e-8).sqrt().mean(dim=(1, 2, 3)).repeat(4)
    assert torch.allclose(stats, expected)


class _QuadraticCritic(torch.nn.Module):
    """D(x) = Σ a ⊙ x² per image: ∇_x D = 2 a ⊙ x, so R1 = mean_b Σ (2 a ⊙ x_b)²."""

    def __init__(self, a: torch.Tensor) -> None:
        super().__init__()
        self.a = torch.nn.Parameter(a)

    def forward(self, x):
        return (self.a * x.square()).flatten(1).sum(dim=1)


def test_r1_penalty_equals_the_hand_computed_gradient_norm():
    generator = torch.Generator().manual_seed(3)
    a = torch.rand(3, 4, 4, generator=generator)
    x = torch.randn(5, 3, 4, 4, generator=generator)
    critic = _QuadraticCritic(a.clone())
    r1 = r1_penalty(critic, x)
    expected = (2 * a * x).square().flatten(1).sum(dim=1).mean()
    assert torch.allclose(r1, expected, rtol=1e-5)
    r1.backward()  # the graph is kept: dR1/da = mean_b 8 a x_b²
    assert torch.allclose(critic.a.grad, (8 * a * x.square()).mean(dim=0), rtol=1e-5)
    assert not x.requires_grad  # the caller's images are left alone


def test_gan_losses_closed_forms():
    zero = torch.zeros(4)
    assert torch.isclose(g_nonsaturating_loss(zero), torch.tensor(math.log(2.0)))
    assert torch.isclose(d_logistic_loss(zero, zero), torch.tensor(2 * math.log(2.0)))
    confident = d_logistic_loss(torch.full((4,), 20.0), torch.full((4,), -20.0))
    assert confident < 1e-8 and g_nonsaturating_loss(torch.full((4,), -3.0)) > 3.0


def test_vgg_perceptual_reads_torchvision_keys_from_safetensors(tmp_path):
    reference = VGGPerceptual()
    generator = torch.Generator().manual_seed(4)
    tensors = {}
    for index, layer in enumerate(reference.features):
        if isinstance(layer, torch.nn.Conv2d):
            tensors[f"features.{index}.weight"] = 0.1 * torch.randn(layer.weight.shape, generator=generator)
            tensors[f"features.{index}.bias"] = 0.1 * torch.randn(layer.bias.shape, generator=generator)
    path = tmp_path / "vgg19.safetensors"
    save_file(tensors, str(path))
    vgg = VGGPerceptual.from_file(path)
    image = torch.rand(2, 3, 32, 32, generator=generator)
    other = torch.rand(2, 3, 32, 32, generator=generator)
    features = vgg.activations(image)
    assert [f.shape[1:] for f in features] == [(64, 32, 32), (128, 16, 16), (256, 8, 8), (512, 4, 4), (512, 2, 2)]
    normalised = (image - torch.tensor([0.485, 0.456, 0.406])[:, None, None]) / torch.tensor(
        [0.229, 0.224, 0.225])[:, None, None]
    relu1_1 = F.relu(F.conv2d(normalised, tensors["features.0.weight"], tensors["features.0.bias"], padding=1))
    assert torch.allclose(features[0], relu1_1, atol=1e-5)
    # exact: the same image through the same network twice gives the same features, so their difference is 0
    assert float(vgg(image, image)) == 0.0 and float(vgg(image, other)) > 0.0
    del tensors["features.28.bias"]
    save_file(tensors, str(path))
    with pytest.raises(ValueError, match=r"vgg19.safetensors.*features\.28\.bias"):
        VGGPerceptual.from_file(path)
    with pytest.raises(FileNotFoundError, match="missing.safetensors"):
        VGGPerceptual.from_file(tmp_path / "missing.safetensors")


# --------------------------------------------------------------------------- #
# Training, checkpoints, evaluation
# --------------------------------------------------------------------------- #
def test_training_improves_held_out_psnr_over_the_renders(tmp_path):
    pairs, held_out = _pairs(24, seed=0), _pairs(8, seed=1)
    cfg = _config(iterations=60, gan_start=40, checkpoint_every=1000, eval_every=30)
    srm = train_srm(cfg, pairs, tmp_path, seed=0, name="test", held_out=held_out)
    before = [s.psnr for s in image_scores(held_out.rgb, held_out.target)]
    after = [s.psnr for s in image_scores(refine(srm.generator, held_out), held_out.target)]
    assert sum(after) / len(after) > sum(before) / len(before) + 1.0
    assert (tmp_path / CHECKPOINT).is_file() and (tmp_path / "live" / "metrics.json").is_file()


def test_resumed_training_equals_uninterrupted_and_refuses_other_data(tmp_path, monkeypatch):
    pairs = _pairs()
    cfg = _config(lr_schedule="cosine")  # the resumed steps must also get the schedule's learning rates
    straight = train_srm(cfg, pairs, tmp_path / "straight", seed=0, name="test")

    calls = {"n": 0}
    original = srm_train.discriminator_step

    def interrupted(*args):
        calls["n"] += 1
        if calls["n"] == 5:  # after the checkpoint of step 4 (GAN from step 2)
            raise KeyboardInterrupt
        return original(*args)

    monkeypatch.setattr(srm_train, "discriminator_step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train_srm(cfg, pairs, tmp_path / "resumed", seed=0, name="test")
    monkeypatch.setattr(srm_train, "discriminator_step", original)
    assert checkpoint_metadata(tmp_path / "resumed" / CHECKPOINT)["iteration"] == "4"
    resumed = train_srm(cfg, pairs, tmp_path / "resumed", seed=0, name="test")
    for a, b in zip([*straight.generator.parameters(), *straight.discriminator.parameters()],
                    [*resumed.generator.parameters(), *resumed.discriminator.parameters()]):
        assert torch.equal(a, b)  # resuming is deterministic: the same bytes

    # other training pairs: the checkpoint is not resumed, training restarts (and rewrites it)
    other = train_srm(cfg, _pairs(seed=5), tmp_path / "resumed", seed=0, name="test")
    assert not torch.equal(other.generator.from_input.weight, straight.generator.from_input.weight)
    assert checkpoint_metadata(tmp_path / "resumed" / CHECKPOINT)["pairs"] == _pairs(seed=5).digest()


def test_cosine_schedule_halves_at_the_middle_and_ends_near_zero():
    cfg = _config(iterations=8, lr_schedule="cosine")
    factors = [lr_factor(cfg, step) for step in range(8)]
    assert factors[0] == pytest.approx(1.0, abs=1e-12) and factors[4] == pytest.approx(0.5)  # (1 + cos 0) / 2
    assert factors[7] == pytest.approx((1 + math.cos(math.pi * 7 / 8)) / 2) and factors[7] < 0.04
    assert all(a > b for a, b in zip(factors, factors[1:]))
    assert lr_factor(_config(), 5) == 1.0  # exact: the constant schedule returns 1.0 itself
    with pytest.raises(ValueError, match="srm.lr_schedule must be one of"):
        lr_factor(_config(lr_schedule="step"), 0)


def test_build_is_seeded_and_leaves_the_global_rng_alone():
    torch.manual_seed(7)
    state = torch.get_rng_state()
    a, b = build_srm(_config(), 16, seed=3), build_srm(_config(), 16, seed=3)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a.generator.encoder[0].conv.weight, b.generator.encoder[0].conv.weight)  # same seed: same bytes
    assert not torch.equal(a.generator.encoder[0].conv.weight, build_srm(_config(), 16, 4).generator.encoder[0].conv.weight)


def test_pairs_helpers(tmp_path):
    pairs = _pairs(6)
    taken = pairs.take([4, 1])
    # take and cat copy images: exact
    assert torch.equal(taken.rgb[0], pairs.rgb[4]) and taken.groups == (pairs.groups[4], pairs.groups[1])
    joined = RenderPairs.cat([pairs, taken])
    assert len(joined) == 8 and torch.equal(joined.target[7], pairs.target[1])
    assert pairs.digest() == _pairs(6).digest() != taken.digest()
    assert model_path(tmp_path, "s01/box", "3dgs") == tmp_path / "s01_box" / "3dgs" / "model.safetensors"
    fake_group = type("Group", (), {"name": "s01/box"})()
    with pytest.raises(FileNotFoundError, match="s01_box/hogs/model.safetensors.*hogs stage"):
        load_trained(None, fake_group, "hogs", model_path(tmp_path, "s01/box", "hogs"), seed=0)
