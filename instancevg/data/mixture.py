"""Index maps for training streams addressed by a global sample index (exact resume, DDP ranks):
per-epoch permutations of finite datasets and weighted mixtures of several sources."""
from __future__ import annotations

import numpy as np
from torch.utils.data import Dataset

__all__ = ["EpochPermutation", "MixtureDataset"]

MIX_SALT = 0x6D6978


class EpochPermutation:
    """g -> ``perm_e[g % n]`` with ``perm_e = default_rng([seed, e]).permutation(n)``, e = g // n.

    The permutation of the current epoch is cached, so a stream of increasing g costs one
    permutation per epoch instead of one per item.

    Raises:
        ValueError: n < 1.
    """

    def __init__(self, n: int, seed: int):
        if n < 1:
            raise ValueError("cannot permute an empty dataset")
        self.n, self.seed = n, seed
        self._epoch, self._perm = -1, None

    def __call__(self, g: int) -> int:
        epoch = g // self.n
        if epoch != self._epoch:
            self._epoch, self._perm = epoch, np.random.default_rng([self.seed, epoch]).permutation(self.n)
        return int(self._perm[g % self.n])


class MixtureDataset(Dataset):
    """Global index g -> ``parts[k][g]``, source k drawn with probability ``weights[k] / sum`` from
    ``default_rng([seed, g, MIX_SALT])`` (salted so the draw is independent of a part's own
    ``default_rng([seed, g])``); every part is itself indexed by global index.

    Raises:
        ValueError: no parts, a weight count that differs, or a weight that is not positive.
    """

    def __init__(self, parts: list[Dataset], weights: list[float], seed: int):
        if not parts or len(parts) != len(weights):
            raise ValueError(f"need one weight per source, got {len(parts)} sources and {len(weights)} weights")
        if any(not w > 0 for w in weights):
            raise ValueError(f"mixture weights must be positive, got {weights}")
        self.parts, self.seed = parts, seed
        w = np.asarray(weights, np.float64)
        self.cdf = np.cumsum(w / w.sum())

    def __len__(self) -> int:
        return 2**62

    def source(self, g: int) -> int:
        """Index of the part that serves global index g."""
        u = np.random.default_rng([self.seed, g, MIX_SALT]).random()
        return min(int(np.searchsorted(self.cdf, u, side="right")), len(self.parts) - 1)

    def __getitem__(self, g: int):
        return self.parts[self.source(g)][g]
