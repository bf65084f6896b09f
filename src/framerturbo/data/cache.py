"""The latent cache: per clip, the scaled target latents, ``aug_variants`` exact endpoint
encodings (see ``encoding.py`` for why this is exact), the two CLIP tokens, fps and motion.

Layout: ``<cache_dir>/<fingerprint>/shard-NNNNN.safetensors`` + ``shard-NNNNN.json`` (its clips,
their bucket and the shard's SHA-256); with ``data.buckets`` each shard holds one bucket's
clips. The fingerprint covers the sources (path, size, mtime), every data and
augmentation setting that changes the content, and the encoder weights — so a stale cache is
never reused. Shards are written atomically and verified when opened: a corrupt one is rebuilt,
and a build that was interrupted resumes from the shards already complete.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch.utils.data import Dataset

from ..core.atomic import atomic_file, file_sha256, remove_stale
from ..denoising.encoding import (
    augmentation_draw,
    encode_endpoints,
    encode_image_tokens,
    encode_target_latents,
    pixels_from_uint8,
)
from .buckets import bucket_counts, shape_name
from .dataset import ClipDataset
from .splits import make_datasets

logger = logging.getLogger(__name__)
FORMAT = 1
# config entries that say how a model was loaded or saved, not what it computes
VOLATILE_CONFIG_KEYS = {"dtype", "torch_dtype", "_name_or_path", "transformers_version",
                        "_diffusers_version", "_commit_hash", "_use_default_values"}


def encoder_fingerprint(*models) -> str:
    h = hashlib.sha256()
    for m in models:
        config = m.config.to_dict() if hasattr(m.config, "to_dict") else dict(m.config)
        config = {k: v for k, v in config.items() if k not in VOLATILE_CONFIG_KEYS}
        h.update(json.dumps(config, sort_keys=True, default=str).encode())
        for name, t in m.state_dict().items():
            h.update(f"{name}:{tuple(t.shape)}:{float(t.double().sum()):.10e}".encode())
    return h.hexdigest()[:16]


def cache_fingerprint(cfg, dataset: ClipDataset, encoders: str) -> str:
    d, o = cfg.data, cfg.objective
    sources = []
    for ref in dataset.items:
        st = Path(ref.source.path).stat()
        sources.append((ref.source.key, st.st_size, int(st.st_mtime)))
    doc = dict(format=FORMAT, sources=sources, encoders=encoders, seed=cfg.train.seed,
               settings=[d.num_frames, d.height, d.width, d.stride, d.target_fps, d.sampling,
                         d.resize, d.motion_bucket, d.fps_id, d.aug_variants, d.cache_shard_size,
                         o.cond_aug_mean, o.cond_aug_std, d.window_overlap])
    if d.buckets:  # added only when on, so caches built without buckets stay valid
        doc["buckets"] = [d.bucket_pixels or d.height * d.width, d.bucket_multiple,
                          sorted(set(d.bucket_frames or [d.num_frames]))]
    return hashlib.sha256(json.dumps(doc, default=str).encode()).hexdigest()[:16]


def _shard_ok(folder: Path, n: int) -> dict | None:
    meta_path, data_path = folder / f"shard-{n:05d}.json", folder / f"shard-{n:05d}.safetensors"
    if not (meta_path.is_file() and data_path.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError:
        return None
    return meta if meta.get("sha256") == file_sha256(data_path) else None


def _atomic_write(path: Path, writer) -> None:
    with atomic_file(path) as tmp:
        writer(tmp)


def _indexed_models(doc: dict) -> list[list[str]]:
    """The models a cache index was built for. Models that share the VAE and CLIP (a width
    probe, a retrained UNet) share one cache folder, so the index keeps every one of them, not
    the last; indexes written before this kept one, under "model"."""
    return list(doc.get("models") or ([doc["model"]] if "model" in doc else []))


def shard_plan(dataset: ClipDataset, size: int) -> list[list[int]]:
    """Clip indices per shard: each bucket's clips (in dataset order) cut into shards of
    ``size``, so a shard holds latents of one shape. Without buckets: 0…size−1, size…, as
    always."""
    groups: dict = {}
    for index, ref in enumerate(dataset.items):
        groups.setdefault(ref.shape, []).append(index)
    return [members[k:k + size] for _, members in sorted(groups.items())
            for k in range(0, len(members), size)]


def build_cache_for(cfg, parts: dict, progress: bool = True) -> tuple[Path, ClipDataset]:
    """The cache of ``cfg``'s training set, encoded with loaded ``parts`` (vae, image_encoder,
    feature_extractor — its CLIP statistics); returns the folder and the dataset."""
    from .splits import make_datasets

    train_set, _ = make_datasets(cfg)
    fe = parts["feature_extractor"]
    folder = build_cache(cfg, train_set, parts["vae"], parts["image_encoder"],
                         getattr(fe, "image_mean", None), getattr(fe, "image_std", None),
                         progress=progress)
    return folder, train_set


def build_cache(cfg, dataset: ClipDataset, vae, image_encoder, clip_mean=None, clip_std=None,
                progress: bool = True) -> Path:
    """Encode every clip of ``dataset`` (epoch-0 windows) into the cache; returns its folder."""
    from tqdm.auto import tqdm


    data_fp = cache_fingerprint(cfg, dataset, "")
    encoders = encoder_fingerprint(vae, image_encoder)
    fp = hashlib.sha256(f"{data_fp}:{encoders}".encode()).hexdigest()[:16]
    folder = Path(cfg.data.cache_dir) / fp
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("shard-", "index.json"):  # temporaries of a build that was killed mid-write
        remove_stale(folder, name)
    plan = shard_plan(dataset, cfg.data.cache_shard_size)
    n_shards = len(plan)
    stats = dict(reused=0, built=0, skipped=0)
    extra = [x for x in (clip_mean, clip_std) if x is not None]
    for n in tqdm(range(n_shards), desc="cache", unit="shard", disable=not progress):
        if _shard_ok(folder, n) is not None:
            stats["reused"] += 1
            continue
        tensors, clips = {}, []
        for index in plan[n]:
            try:
                sample = dataset.load(index, 0)
            except ValueError as e:  # unreadable / too short: keep going
                logger.warning("cache: skipping clip %d (%s)", index, e)
                stats["skipped"] += 1
                continue
            pixels = pixels_from_uint8(sample["frames"][None]).to(vae.device)
            start, end = pixels[:, 0], pixels[:, -1]
            draws = [augmentation_draw(sample["key"], v, cfg.objective.cond_aug_mean,
                                       cfg.objective.cond_aug_std, pixels.shape[2:])
                     for v in range(cfg.data.aug_variants)]
            sigma = torch.tensor([d[0] for d in draws], device=vae.device)
            noise = torch.stack([d[1] for d in draws]).to(vae.device)
            slot = str(index)
            tensors[f"{slot}.latents"] = encode_target_latents(vae, pixels)[0].cpu()
            tokens = encode_image_tokens(image_encoder, start, end, *extra)
            variants = encode_endpoints(vae, image_encoder, start.expand(len(draws), -1, -1, -1),
                                        end.expand(len(draws), -1, -1, -1), sigma,
                                        (noise[:, 0], noise[:, 1]),
                                        image_embeddings=tokens.expand(len(draws), -1, -1))
            tensors[f"{slot}.tokens"] = variants.image_embeddings[0].cpu()
            tensors[f"{slot}.endpoints"] = variants.endpoint_latents.cpu()
            tensors[f"{slot}.aug_sigma"] = sigma.cpu()
            clips.append(dict(index=index, key=sample["key"], fps=sample["fps"],
                              motion_bucket=sample["motion_bucket"],
                              times=dataset.clip_plan(index, 0)["times"]))
        data_path = folder / f"shard-{n:05d}.safetensors"
        tensors = {k: v.contiguous() for k, v in tensors.items()}
        _atomic_write(data_path, lambda tmp: save_file(tensors, tmp) if tensors else
                      Path(tmp).write_bytes(b""))
        meta = dict(clips=clips, sha256=file_sha256(data_path),
                    bucket=shape_name(dataset.items[plan[n][0]].shape) if plan[n] else None)
        _atomic_write(folder / f"shard-{n:05d}.json",
                      lambda tmp: Path(tmp).write_text(json.dumps(meta)))
        stats["built"] += 1
    index = folder / "index.json"
    models = _indexed_models(json.loads(index.read_text()) if index.exists() else {})
    model = [cfg.model.pretrained, cfg.model.svd]
    models += [model] if model not in models else []
    _atomic_write(index, lambda tmp: Path(tmp).write_text(json.dumps(
        dict(fingerprint=fp, data_fingerprint=data_fp, encoders=encoders,
             models=models, shards=n_shards, clips=len(dataset),
             buckets=bucket_counts(ref.shape for ref in dataset.items), **stats))))
    logger.info("cache %s: %s", folder, stats)
    return folder


class CachedClipDataset(Dataset):
    """Cached clips as :class:`~framerturbo.encoding.EncodedBatch` fields; the augmentation
    variant (and track choice) per visit comes from the same plan as the uncached dataset."""

    def __init__(self, folder: Path, dataset: ClipDataset):
        self.folder, self.dataset = Path(folder), dataset
        self.slots: dict[int, tuple[int, dict]] = {}
        n_shards = json.loads((self.folder / "index.json").read_text())["shards"]
        for n in range(n_shards):
            meta = _shard_ok(self.folder, n)
            if meta is None:
                raise ValueError(f"{self.folder}/shard-{n:05d}: missing or corrupt — run "
                                 "`framerturbo cache` again to rebuild it")
            for clip in meta["clips"]:
                self.slots[clip["index"]] = (n, clip)
        self.order = sorted(self.slots)

    def __len__(self) -> int:
        return len(self.order)

    def bucket_keys(self) -> list | None:
        """Each cached item's (H, W, F) when buckets are on (see ``ClipDataset``)."""
        keys = self.dataset.bucket_keys()
        return None if keys is None else [keys[index] for index in self.order]

    def __getitem__(self, address) -> dict:
        i, epoch = address if isinstance(address, tuple) else (address, 0)
        index = self.order[i]
        shard, clip = self.slots[index]
        plan = self.dataset.clip_plan(index, epoch)
        v = plan["aug_index"]
        path = self.folder / f"shard-{shard:05d}.safetensors"
        with safe_open(str(path), framework="pt") as f:
            get = lambda name: f.get_tensor(f"{index}.{name}")  # noqa: E731
            item = dict(latents=get("latents"), image_embeddings=get("tokens"),
                        endpoint_latents=get("endpoints")[v], aug_sigma=get("aug_sigma")[v],
                        fps=torch.tensor(float(clip["fps"])),
                        motion_bucket=torch.tensor(float(clip["motion_bucket"])))
        if self.dataset.settings.use_tracks:
            ref = self.dataset.items[index]
            plan["times"] = clip["times"]
            w, h = ref.size
            item["heatmaps"] = self.dataset.heatmaps(ref, plan, (h, w))
        item["skipped"] = 0
        return item


@dataclass
class OpenedCache:
    train: CachedClipDataset
    validation: ClipDataset | None


def open_cache(cfg) -> OpenedCache:
    """The cache built for this config (by ``framerturbo cache``); a clear error otherwise."""
    if cfg.data.flip:
        raise ValueError("data.flip cannot be used with data.cache_dir (latents of flipped "
                         "frames are not flipped latents) — turn one of them off")
    train, val = make_datasets(cfg)
    data_fp = cache_fingerprint(cfg, train, "")
    root = Path(cfg.data.cache_dir)
    candidates = sorted(root.glob("*/index.json"), key=lambda p: p.stat().st_mtime)
    for index_path in reversed(candidates):
        doc = json.loads(index_path.read_text())
        if doc.get("data_fingerprint") == data_fp and [
                cfg.model.pretrained, cfg.model.svd] in _indexed_models(doc):
            return OpenedCache(CachedClipDataset(index_path.parent, train), val)
    raise ValueError(f"{root}: no cache matches this data/config (sources or settings "
                     "changed?) — run `framerturbo cache --config …` first")
