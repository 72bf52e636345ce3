"""Every random stream of a run derived from (run seed, purpose, index): iteration i draws from a
generator seeded with (seed, "iteration", i), epoch e's data order from (seed, "epoch", e), so a
resumed run needs only the iteration counter to continue exactly as an uninterrupted one."""

import hashlib

import torch


def derive_seed(*parts) -> int:
    """A 32-bit seed from (run seed, purpose, index). torch's CPU generator keeps only the low 32
    bits of a seed, so packing parts into high bits would give every run the same stream."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=4).digest()
    return int.from_bytes(digest, "little")


def seeded_generator(device: torch.device, *parts) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(derive_seed(*parts))


def epoch_order(seed: int, epoch: int, n: int) -> torch.Tensor:
    return torch.randperm(n, generator=seeded_generator(torch.device("cpu"), seed, "epoch", epoch))
