"""The shipped launch configs (accelerate DDP / DeepSpeed ZeRO-2/3 / FSDP, SLURM) parse, name real
module classes, and agree with the training configs they are meant for; the trainer refuses a
launch whose precision, accumulation or clipping disagree with its config."""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from framerturbo.core.config import SHIPPED, load_config
from framerturbo.train.loop import check_engine, check_launch_precision

ROOT = Path(__file__).resolve().parents[1]
LAUNCH = sorted((SHIPPED / "accelerate").glob("*.yaml"))
GPU_CONFIGS = [SHIPPED / "framer-512x320-lora.toml", SHIPPED / "signlang-576.toml"]


def launch_config(path):
    from accelerate.commands.config.config_args import load_config_from_file

    return load_config_from_file(str(path))


def test_every_engine_is_shipped():
    assert {p.stem for p in LAUNCH} == {"ddp", "deepspeed-zero2", "deepspeed-zero3", "fsdp"}
    kinds = {p.stem: str(launch_config(p).distributed_type) for p in LAUNCH}
    assert kinds["ddp"].endswith("MULTI_GPU") and kinds["fsdp"].endswith("FSDP")
    stages = {p.stem: launch_config(p).deepspeed_config.get("zero_stage") for p in LAUNCH
              if "deepspeed" in p.stem}
    assert stages == {"deepspeed-zero2": 2, "deepspeed-zero3": 3}


@pytest.mark.parametrize("launch", LAUNCH, ids=lambda p: p.stem)
@pytest.mark.parametrize("train_config", GPU_CONFIGS, ids=lambda p: p.stem)
def test_launch_config_agrees_with_the_training_config(launch, train_config, monkeypatch):
    cfg = load_config(train_config, [])
    lc = launch_config(launch)
    assert lc.mixed_precision == cfg.train.mixed_precision
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", lc.mixed_precision)  # what launch exports
    check_launch_precision(cfg)
    ds = lc.deepspeed_config or {}
    plugin = SimpleNamespace(deepspeed_config=ds) if ds else None
    check_engine(cfg, SimpleNamespace(state=SimpleNamespace(deepspeed_plugin=plugin)))


def test_fsdp_wraps_classes_the_unet_really_has(micro_parts):
    names = launch_config(SHIPPED / "accelerate/fsdp.yaml").fsdp_config[
        "fsdp_transformer_layer_cls_to_wrap"].split(",")
    present = {type(m).__name__ for m in micro_parts["unet"].modules()}
    assert set(names) <= present


def test_trainer_refuses_a_disagreeing_launch(monkeypatch):
    cfg = load_config(None, ["train.mixed_precision=no", "train.grad_accum=2"])
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "bf16")
    with pytest.raises(ValueError, match="make them agree"):
        check_launch_precision(cfg)
    plugin = SimpleNamespace(deepspeed_config={"gradient_accumulation_steps": 4,
                                               "gradient_clipping": 1.0})
    with pytest.raises(ValueError, match="gradient_accumulation_steps = 4 but train.grad_accum"):
        check_engine(cfg, SimpleNamespace(state=SimpleNamespace(deepspeed_plugin=plugin)))


def test_slurm_template_is_valid_bash():
    script = SHIPPED / "slurm" / "train-multinode.sbatch"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    text = script.read_text()
    assert "accelerate launch" in text and "--resume" in text and "#SBATCH --nodes" in text
