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
    micro-batch."""

    def __init__(self, size: int, batch: int, rank: int, world: int, seed: int, start: int):
        self.size, self.batch, self.rank, self.world = size, batch, rank, world
        self.seed, self.start = seed, start
        self._perms: dict[int, torch.Tensor] = {}

    def _perm(self, epoch: int) -> torch.Tensor:
        if epoch not in self._perms:
            g = torch.Generator().manual_seed(stable_seed("order", self.seed, epoch))
            self._perms = {epoch: torch.randperm(self.size, generator=g)}
        return self._perms[epoch]

    def addresses(self, micro: int) -> list[tuple[int, int]]:
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
