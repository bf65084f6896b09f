"""Model contracts: released names/shapes/counts, loading the released layout, the forward's
residual injection and feature output, and weight surgery from SVD."""

from __future__ import annotations

import pytest
import torch
from diffusers import UNetSpatioTemporalConditionModel

from conftest import DATA
from framerturbo.models import FramerControlNet, FramerUNet, config, init_from_svd
from framerturbo.models.norms import set_norm_groups


def _stock_micro(**overrides) -> dict:
    """The micro UNet config for diffusers' stock class (which has no norm_groups)."""
    cfg = config("micro-unet") | overrides
    cfg.pop("norm_groups")
    return cfg


def unet_inputs(unet, batch=2, frames=5, size=8, channels=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    c = channels or unet.config.in_channels
    return dict(
        sample=torch.randn(batch, frames, c, size, size, generator=g),
        timestep=torch.tensor(0.37),
        encoder_hidden_states=torch.randn(batch, 2, unet.config.cross_attention_dim, generator=g),
        added_time_ids=torch.tensor([[6.0, 100.0, 0.02]] * batch),
    )


def tsv(name):
    rows = (line.split("\t") for line in (DATA / name).read_text().splitlines())
    return {k: tuple(int(x) for x in shape.split(",")) for k, shape in rows}


@pytest.mark.parametrize("cls,cfg,keys,count", [
    (FramerUNet, "released-unet", "framer_unet_keys.tsv", 1_524_625_966),
    (FramerControlNet, "released-controlnet", "framer_controlnet_keys.tsv", 682_024_417),
])
def test_released_architecture_names_shapes_and_count(cls, cfg, keys, count):
    with torch.device("meta"):
        model = cls(**config(cfg))
    assert sum(p.numel() for p in model.parameters()) == count
    mine = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert mine == tsv(keys)


def test_released_layout_loads_with_no_missing_or_unexpected_keys(released_layout, micro_parts):
    framer, _ = released_layout
    for cls, name in ((FramerUNet, "unet"), (FramerControlNet, "controlnet")):
        model, info = cls.from_pretrained(framer / name, output_loading_info=True)
        assert all(not v for v in info.values()), info
        for k, v in micro_parts[name].state_dict().items():
            assert torch.equal(model.state_dict()[k], v), k


def test_unet_loads_stock_svd_state_dict_plus_mask_token():
    groups = config("micro-unet").pop("norm_groups")
    stock = UNetSpatioTemporalConditionModel(**_stock_micro(in_channels=9))
    set_norm_groups(stock, groups)  # FramerUNet = the stock UNet with these group counts
    state = dict(stock.state_dict(), mask_token=torch.randn(1, 1, 4, 1, 1))
    framer = FramerUNet(**config("micro-unet"))
    framer.load_state_dict(state, strict=True)
    x = unet_inputs(framer)
    with torch.no_grad():  # equal to float rounding (summation order differs by thread count)
        torch.testing.assert_close(framer(**x).sample, stock(**x).sample, rtol=1e-5, atol=1e-5)
    assert torch.equal(framer.mask_token, state["mask_token"])


def test_forward_without_extras_is_stock_and_explicit_path_matches_it(micro_parts):
    unet = micro_parts["unet"]
    x = unet_inputs(unet)
    with torch.no_grad():
        stock = UNetSpatioTemporalConditionModel.forward(unet, **x).sample
        plain = unet(**x).sample
        zeros = tuple(torch.zeros_like(s) for s in _skip_shapes(unet, x))
        explicit = unet(**x, down_block_additional_residuals=zeros,
                        mid_block_additional_residual=torch.zeros(1),
                        return_up_block_features=True)
    assert torch.equal(plain, stock)
    assert torch.equal(explicit.sample, stock)
    features = explicit.up_block_features
    assert len(features) == len(unet.up_blocks)
    assert features[unet.autopilot_feature_index].shape[-2:] == x["sample"].shape[-2:]


def _skip_shapes(unet, x):
    controlnet = FramerControlNet.from_unet(unet)
    with torch.no_grad():
        down, _ = controlnet(**x, controlnet_cond=torch.zeros(*x["sample"].shape[:2], 3, 64, 64),
                             return_dict=False)
    return down


def test_fresh_controlnet_is_a_no_op_and_trained_residuals_change_the_unet(micro_parts):
    unet = micro_parts["unet"]
    fresh = FramerControlNet.from_unet(unet)
    x = unet_inputs(unet)
    heat = torch.rand(2, 5, 3, 64, 64) * 255
    with torch.no_grad():
        base = unet(**x).sample
        down, mid = fresh(**x, controlnet_cond=heat, return_dict=False)
        assert len(down) == unet.num_skip_tensors == 12
        assert all(float(d.abs().max()) == 0 for d in down) and float(mid.abs().max()) == 0
        same = unet(**x, down_block_additional_residuals=down, mid_block_additional_residual=mid)
        assert torch.equal(same.sample, base)

        down, mid = micro_parts["controlnet"](**x, controlnet_cond=heat, conditioning_scale=1.0,
                                              return_dict=False)
        changed = unet(**x, down_block_additional_residuals=down,
                       mid_block_additional_residual=mid).sample
        assert (changed - base).abs().max() > 1e-3
        half, _ = micro_parts["controlnet"](**x, controlnet_cond=heat, conditioning_scale=0.5,
                                            return_dict=False)
        assert torch.allclose(half[5], down[5] * 0.5)


def test_controlnet_heatmaps_matter(micro_parts):
    cn = micro_parts["controlnet"]
    x = unet_inputs(micro_parts["unet"])
    with torch.no_grad():
        a, _ = cn(**x, controlnet_cond=torch.zeros(2, 5, 3, 64, 64), return_dict=False)
        b, _ = cn(**x, controlnet_cond=torch.full((2, 5, 3, 64, 64), 255.0), return_dict=False)
    assert (a[0] - b[0]).abs().max() > 1e-4


def test_wrong_residual_count_is_a_clear_error(micro_parts):
    unet = micro_parts["unet"]
    with pytest.raises(ValueError, match="expected 12 down-block residuals"):
        unet(**unet_inputs(unet), down_block_additional_residuals=(torch.zeros(1),))


def test_controlnet_rejects_id_features():
    with pytest.raises(ValueError, match="with_id_feature"):
        FramerControlNet(**{**config("micro-controlnet"), "with_id_feature": True})


def test_init_from_svd_matches_the_8_channel_model_when_mask_is_zero():
    torch.manual_seed(1)
    svd = UNetSpatioTemporalConditionModel(**_stock_micro(in_channels=8))
    framer = init_from_svd(svd)
    assert framer.config.in_channels == 9
    assert framer.conv_in.weight.shape[1] == 9
    assert float(framer.conv_in.weight.detach()[:, 8].abs().max()) == 0
    x8 = unet_inputs(svd, channels=8)
    x9 = dict(x8, sample=torch.cat([x8["sample"], torch.zeros_like(x8["sample"][:, :, :1])], 2))
    with torch.no_grad():
        # 1e-3: a 9- and an 8-channel conv_in take different CPU kernels (up to ≈ 1e-4 apart on
        # one thread); mask-channel weights of 0.01 already move it by ≈ 0.09
        torch.testing.assert_close(framer(**x9).sample, svd(**x8).sample, rtol=1e-3, atol=1e-3)
        x9["sample"][:, :, 8] = 1.0  # the mask channel is inert until trained
        torch.testing.assert_close(framer(**x9).sample, svd(**x8).sample, rtol=1e-3, atol=1e-3)
    with pytest.raises(ValueError, match="8-channel"):
        init_from_svd(framer)


@pytest.mark.parametrize("k", [0, 4, 11])
def test_down_residual_goes_to_the_skip_copy_only(micro_parts, k):
    """Reference: the stock forward with a pre-hook that adds the residual to skip k where the up
    path consumes it (up block i receives skips[3(3-i):3(4-i)]); the down path is untouched."""
    unet = micro_parts["unet"]
    x = unet_inputs(unet)
    shapes = [s.shape for s in _skip_shapes(unet, x)]
    r = torch.randn(shapes[k], generator=torch.Generator().manual_seed(k))
    residuals = tuple(r if i == k else torch.zeros(s) for i, s in enumerate(shapes))
    block = unet.up_blocks[3 - k // 3]

    def add(module, args, kwargs):
        res = list(kwargs["res_hidden_states_tuple"])
        res[k % 3] = res[k % 3] + r
        return args, dict(kwargs, res_hidden_states_tuple=tuple(res))

    expected = stock_output_with_hook(unet, x, block.register_forward_pre_hook(
        add, with_kwargs=True))
    with torch.no_grad():
        got = unet(**x, down_block_additional_residuals=residuals).sample
    assert torch.allclose(got, expected, atol=1e-6)


def stock_output_with_hook(unet, x, handle):
    """The stock forward's output while ``handle``'s hook is installed (then removed)."""
    try:
        with torch.no_grad():
            return UNetSpatioTemporalConditionModel.forward(unet, **x).sample
    finally:
        handle.remove()


def test_mid_residual_is_added_to_the_mid_block_output(micro_parts):
    unet = micro_parts["unet"]
    x = unet_inputs(unet)
    r = torch.randn(10, 64, 1, 1, generator=torch.Generator().manual_seed(3))
    expected = stock_output_with_hook(
        unet, x, unet.mid_block.register_forward_hook(lambda m, a, out: out + r))
    with torch.no_grad():
        got = unet(**x, mid_block_additional_residual=r).sample
    assert torch.allclose(got, expected, atol=1e-6)
