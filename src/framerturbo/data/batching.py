"""How the trainer walks a dataset: a seeded order of (index, epoch) addresses per process, and
the collation of items into a batch. Both are functions of (seed, step), so a resumed run reads
exactly the batches the unbroken run would have."""

from __future__ import annotations

import torch
from torch.utils.data import Sampler

from ..core.seeding import stable_seed


class AddressSampler(Sampler):
    """Batches of (index, epoch) for one process, from micro-batch ``start`` on: the global
    order is a fresh permutation per epoch, seeded; process r takes its slice of each global
    micro-batch.

    With ``groups`` (each item's bucket, ``data/buckets.py``) every global micro-batch comes
    from one bucket: per epoch, each bucket's items are permuted and cut into global batches —
    the last one filled up from the start of the same permutation, so no bucket is dropped —
    and those batches are shuffled. The number of batches per epoch is fixed, so micro-batch m
    is a function of (seed, m) as without buckets, and a resumed run reads the same batches."""

    def __init__(self, size: int, batch: int, rank: int, world: int, seed: int, start: int,
                 groups: list | None = None):
        self.size, self.batch, self.rank, self.world = size, batch, rank, world
        self.seed, self.start = seed, start
        self._perms: dict[int, torch.Tensor] = {}
        self.members: dict | None = None
        if groups is not None:
            self.members = {}
            for index, key in enumerate(groups):
                self.members.setdefault(tuple(key), []).append(index)
            chunk = batch * world
            self.per_epoch = sum(-(-len(m) // chunk) for m in self.members.values())
        self._plans: dict[int, list[list[int]]] = {}

    def _plan(self, epoch: int) -> list[list[int]]:
        """The global micro-batches of one epoch, each from one bucket."""
        if epoch not in self._plans:
            g = torch.Generator().manual_seed(stable_seed("buckets", self.seed, epoch))
            chunk, batches = self.batch * self.world, []
            for key in sorted(self.members):
                items = self.members[key]
                perm = [items[int(i)] for i in torch.randperm(len(items), generator=g)]
                n = -(-len(perm) // chunk)
                filled = (perm * (n * chunk // len(perm) + 1))[:n * chunk]
                batches += [filled[k * chunk:(k + 1) * chunk] for k in range(n)]
            order = torch.randperm(len(batches), generator=g)
            self._plans = {epoch: [batches[int(i)] for i in order]}
        return self._plans[epoch]

    def _perm(self, epoch: int) -> torch.Tensor:
        if epoch not in self._perms:
            g = torch.Generator().manual_seed(stable_seed("order", self.seed, epoch))
            self._perms = {epoch: torch.randperm(self.size, generator=g)}
        return self._perms[epoch]

    def addresses(self, micro: int) -> list[tuple[int, int]]:
        if self.members is not None:
            epoch = micro // self.per_epoch
            batch = self._plan(epoch)[micro % self.per_epoch]
            mine = batch[self.rank * self.batch:(self.rank + 1) * self.batch]
            return [(index, epoch) for index in mine]
        first = (micro * self.world + self.rank) * self.batch
        out = []
        for flat in range(first, first + self.batch):
            epoch = flat // self.size
            out.append((int(self._perm(epoch)[flat % self.size]), epoch))
        return out

    def __iter__(self):
        micro = self.start
        while True:
            yield self.addresses(micro)
            micro += 1

    def __len__(self):  # effectively endless; the loop stops at max_steps
        return 2**62


def collate(items: list[dict]) -> dict:
    """Stack tensors, list everything else (keys, skip counts)."""
    out = {}
    for key in items[0]:
        values = [it[key] for it in items]
        out[key] = torch.stack(values) if isinstance(values[0], torch.Tensor) else values
    return out
