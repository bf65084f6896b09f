"""Experiment trackers through accelerate (train.report_to), without a network: TensorBoard's
events, W&B's offline run folder and an MLflow file store carry metrics.jsonl's scalars, the
resolved config and the validation media. W&B and MLflow come with the `trackers` extra; their
tests skip where it is not installed."""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path

import pytest

from framerturbo.core.config import ConfigError, load_config
from framerturbo.train import trackers
from framerturbo.train.loop import train
from videos import make_dataset

BASE = ["model.pretrained=random-micro", "data.num_frames=5", "data.height=64", "data.width=64",
        "data.stride=2", "data.validation_clips=1", "lora.rank=4", "lora.alpha=4",
        "train.log_every=1", "train.lr=1e-3", "train.batch_size=2", "train.max_steps=2",
        "validation.steps=2"]


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("clips"), n=4)


def run(clips, out, report_to):
    return train(load_config(None, [f"data.sources={clips}", f"train.output_dir={out}", *BASE,
                                    f"train.report_to={report_to}"]))


def jsonl_losses(run_dir: Path) -> dict[int, float]:
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in rows if "loss" in r}


def test_report_to_is_checked_with_one_line(monkeypatch):
    assert load_config(None, []).train.report_to == ["tensorboard"]
    assert load_config(None, ["train.report_to=none"]).train.report_to == []
    with pytest.raises(ConfigError, match="did you mean 'wandb'"):
        load_config(None, ["train.report_to=tensorboard,wandbb"])
    import accelerate.tracking

    monkeypatch.setattr(accelerate.tracking, "get_available_trackers", lambda: ["tensorboard"])
    with pytest.raises(ConfigError, match=r"'wandb' but its package is not installed — pip "
                                          r"install 'framerturbo\[trackers\]'") as e:
        trackers.check_trackers(["tensorboard", "wandb"])
    assert "\n" not in str(e.value)


def test_wandb_without_a_key_is_one_line_before_the_run_folder(clips, tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    for name in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc, no ~/.config/wandb settings
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "no-config"))
    with pytest.raises(ConfigError, match="W&B has no API key — run `wandb login`") as e:
        run(clips, tmp_path / "wb", "wandb")
    assert "\n" not in str(e.value) and not (tmp_path / "wb").exists()
    monkeypatch.setenv("WANDB_MODE", "offline")  # offline needs no key
    trackers.check_trackers(["wandb"])
    monkeypatch.delenv("WANDB_MODE")
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    trackers.check_trackers(["wandb"])


def test_tensorboard_gets_the_scalars_config_and_image(clips, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir = run(clips, tmp_path / "tb", "tensorboard")
    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"images": 0}).Reload()
    assert {e.step: round(e.value, 5) for e in events.Scalars("loss")} == \
        {s: round(v, 5) for s, v in jsonl_losses(run_dir).items()}
    assert events.Images("val/samples")  # the validation grid's middle frame
    assert list((run_dir / "tensorboard").rglob("hparams.yml"))  # the resolved config


def read_wandb_records(path: Path):
    """The records of a .wandb file (W&B's LevelDB-style log: 7-byte header, 32 KiB blocks of
    [crc32 | length u16 | type u8] chunks), parsed with W&B's own protobuf."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, block, pending = 7, 32768, b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # block trailer
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind == 0 and length == 0:
            break
        pending += chunk
        if kind in (1, 4):  # FULL or LAST
            record = pb.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


def wandb_log(log: Path) -> tuple[str | None, dict, dict]:
    """The run's display name, its history by step and its config, from a .wandb file."""
    name, history, config = None, {}, {}
    for r in read_wandb_records(log):
        kind = r.WhichOneof("record_type")
        if kind == "history":
            items: dict = {}
            for i in r.history.item:  # media are nested: key → {path, _type, …}
                key, *inner = [i.key] if i.key else list(i.nested_key)
                value = json.loads(i.value_json)
                if inner:
                    items.setdefault(key, {})[inner[0]] = value
                else:
                    items[key] = value
            history.setdefault(items.get("_step"), {}).update(items)
        elif kind == "config":
            config |= {i.key: json.loads(i.value_json) for i in r.config.update}
        elif kind == "run":
            name = r.run.display_name
    return name, history, config


def test_wandb_offline_run_folder_has_the_scalars(clips, tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb-dir"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    (tmp_path / "wandb-dir").mkdir()
    run_dir = run(clips, tmp_path / "wb", "wandb")
    (folder,) = (tmp_path / "wandb-dir" / "wandb").glob("offline-run-*")
    (log,) = folder.glob("run-*.wandb")
    name, history, config = wandb_log(log)
    deadline = time.monotonic() + 30
    while name is None and time.monotonic() < deadline:  # W&B's writer process may lag
        time.sleep(0.5)  # behind finish() on a loaded machine (seen once in CI)
        name, history, config = wandb_log(log)
    assert name == "wb"
    assert {s: round(h["loss"], 5) for s, h in history.items() if "loss" in h} == \
        {s: round(v, 5) for s, v in jsonl_losses(run_dir).items()}
    assert "val/psnr" in history[2]
    image, gif = history[2]["val/samples"], history[2]["val/samples_gif"]
    assert image["_type"] == "image-file" and gif["_type"] == "video-file"
    assert (folder / "files" / image["path"]).is_file() and (folder / "files" / gif["path"]).is_file()
    assert config["lora.rank"] == 4 and config["train.report_to"] == '["wandb"]'


def test_mlflow_file_store_has_the_metrics(clips, tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    store = tmp_path / "mlruns"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.as_uri())
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow ≥ 3.7 asks for it
    run_dir = run(clips, tmp_path / "ml", "mlflow")
    from mlflow.tracking import MlflowClient

    client = MlflowClient(store.as_uri())
    (exp,) = [e for e in client.search_experiments() if e.name == trackers.PROJECT]
    (found,) = client.search_runs([exp.experiment_id])
    assert found.info.run_name == "ml"
    history = client.get_metric_history(found.info.run_id, "loss")
    assert {m.step: round(m.value, 5) for m in history} == \
        {s: round(v, 5) for s, v in jsonl_losses(run_dir).items()}
    assert "val/ssim" in found.data.metrics
    assert found.data.params["lora.rank"] == "4"
    assert [a.path for a in client.list_artifacts(found.info.run_id, "samples")] == \
        ["samples/step-00000002.gif"]
