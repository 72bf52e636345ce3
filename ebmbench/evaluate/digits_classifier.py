"""The digits classifier whose embedding is the FID/KID feature of the embedded `digits` dataset:
its network, its training on the digits train split (with mild nuisance augmentation), and the one
loader that both the command-line check and the scoring use, so they refuse a file alike.

FID/KID are taken on its L2-normalised 128-d embedding, IS on its 10-way logits (the MNIST-literature
practice; the numbers are not comparable to Inception's). Validated in tests/test_extractors.py.
"""

import time

import torch
from torch import nn
from tqdm import tqdm

from ..checks import input_file
from ..data import dataset_info, load_prepared
from ..io import SuiteError, load_torch, save_torch, to_float
from ..sources import digits_split
from .disturbances import blur_tensor


class DigitsClassifier(nn.Module):
    """A digits classifier whose 128-d embedding, L2-normalised, is the FID/KID feature.

    Normalising removes the embedding's length, which in a ReLU network grows with ink contrast:
    unnormalised, a faint but well-formed digit lands far from a crisp one and FID measures
    contrast. The logits are read from the normalised embedding (a cosine classifier, as in
    NormFace, Wang et al. 2017), so the space that separates the classes is the one FID measures.
    Two architectures, so that the agreement check (`ebmbench agreement`) can compare independent
    instruments: `conv` (3x3 convs, max pooling, ReLU; the default) and `lenet` (5x5 convs, average
    pooling, tanh, after LeCun et al. 1998).
    """

    ARCHS = ("conv", "lenet")
    SCALE = 16.0  # logit scale of the cosine classifier: unit-norm inputs need it to reach confident logits

    def __init__(self, arch: str = "conv"):
        super().__init__()
        if arch == "conv":
            self.body = nn.Sequential(
                nn.Conv2d(3, 32, 3, 1, 1),
                nn.ReLU(),
                nn.MaxPool2d(2),  # 16x16
                nn.Conv2d(32, 64, 3, 1, 1),
                nn.ReLU(),
                nn.MaxPool2d(2),  # 8x8
                nn.Conv2d(64, 128, 3, 1, 1),
                nn.ReLU(),
                nn.MaxPool2d(2),  # 4x4
                nn.Flatten(),
                nn.Linear(128 * 16, 128),
            )
        elif arch == "lenet":
            self.body = nn.Sequential(
                nn.Conv2d(3, 16, 5, 1, 2),
                nn.Tanh(),
                nn.AvgPool2d(2),  # 16x16
                nn.Conv2d(16, 48, 5, 1, 2),
                nn.Tanh(),
                nn.AvgPool2d(2),  # 8x8
                nn.Conv2d(48, 96, 3, 2, 1),
                nn.Tanh(),  # 4x4
                nn.Flatten(),
                nn.Linear(96 * 16, 128),
            )
        else:
            raise SuiteError(f"unknown digits classifier architecture '{arch}'; known: {', '.join(self.ARCHS)}.")
        self.head = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x in [-1, 1], (B, 3, 32, 32) -> (unit-norm features, logits)."""
        f = nn.functional.normalize(self.body(x), dim=1)
        return f, self.head(self.SCALE * f)


def _augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Nuisances that generated digits show and that should not count as a change of shape.

    Generated digits are not centred exactly (shift), come faint or with a grey background
    (contrast, brightness), grainy (Langevin noise) or soft (decoder blur). Each is drawn mildly,
    within what a reader still sees as the same digit, so FID stays sensitive to the strong
    disturbances of the Heusel et al. 2017 test (tests/test_extractors.py)."""
    b = len(x)
    u = lambda *shape: torch.rand(*shape, generator=gen)  # noqa: E731
    dx, dy = torch.randint(-2, 3, (2,), generator=gen).tolist()
    x = torch.roll(x, (dy, dx), dims=(2, 3))
    lo = -1 + 0.4 * u(b, 1, 1, 1)  # background brought up to -0.6
    hi = 1 - 0.7 * u(b, 1, 1, 1)  # ink brought down to 0.3
    x = lo + (x + 1) / 2 * (hi - lo)
    blurred = u(b) < 1 / 3
    if blurred.any():
        x = x.clone()
        x[blurred] = blur_tensor(x[blurred], 0.3 + 0.7 * u(int(blurred.sum())))
    noisy = (u(b, 1, 1, 1) < 0.5).float()
    x = x + noisy * 0.2 * u(b, 1, 1, 1) * torch.randn(x.shape, generator=gen)
    return x.clamp(-1, 1)


def train_digits_classifier(data_dir, out_path, epochs: int = 12, seed: int = 0, arch: str = "conv") -> dict:
    """Train the digits feature extractor on the train split (augmented); report test accuracy."""
    start = time.perf_counter()
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    from sklearn.datasets import load_digits

    info = dataset_info(data_dir)
    if info["kind"] != "digits":
        raise SuiteError(f"the digits classifier needs the prepared digits dataset, got '{info['name']}'.")
    labels = torch.as_tensor(load_digits().target)
    train_idx, test_idx = digits_split(len(labels))
    y_train, y_test = labels[train_idx], labels[test_idx]
    x_train = to_float(load_prepared(data_dir, "train"))
    x_test = to_float(load_prepared(data_dir, "test"))
    net = DigitsClassifier(arch)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    for _ in tqdm(range(epochs), desc=f"digits classifier ({arch})", unit="epoch"):
        for idx in torch.randperm(len(x_train), generator=gen).split(64):
            loss = nn.functional.cross_entropy(net(_augment(x_train[idx], gen))[1], y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        acc = (net(x_test)[1].argmax(1) == y_test).float().mean().item()
    if acc < 0.9:
        raise SuiteError(
            f"digits classifier reached only {acc:.3f} test accuracy; its features would make FID meaningless."
        )
    seconds = time.perf_counter() - start
    save_torch(
        out_path,
        {
            "state_dict": net.state_dict(),
            "arch": arch,
            "seed": seed,
            "epochs": epochs,
            "test_accuracy": acc,
            "train_seconds": seconds,
        },
    )
    return {"test_accuracy": acc, "arch": arch, "seed": seed, "train_seconds": round(seconds, 1)}


def load_digits_classifier(path) -> DigitsClassifier:
    """The network a file written by `train_digits_classifier` holds, in eval mode; anything else is
    refused in one paragraph that says why and what to do."""
    ckpt = load_torch(path, "digits classifier")

    def refused(why: str) -> SuiteError:
        return SuiteError(
            f"{path} is not a digits classifier written by this version of `ebmbench classifier` ({why}); "
            f"pass resources/digits_classifier.pt or retrain it with `ebmbench classifier`."
        )

    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state_dict"), dict):
        raise refused("it holds no state_dict")
    if "arch" not in ckpt:
        # an older ebmbench's classifier (it kept test_accuracy, no arch) had unnormalised features:
        # scoring with it would silently change every number
        older = ": the format of an older ebmbench, whose features were unnormalised" if "test_accuracy" in ckpt else ""
        raise refused("no 'arch' field" + older)
    if ckpt["arch"] not in DigitsClassifier.ARCHS:
        raise refused(f"unknown architecture {ckpt['arch']!r}; known: {', '.join(DigitsClassifier.ARCHS)}")
    net = DigitsClassifier(ckpt["arch"])
    try:
        net.load_state_dict(ckpt["state_dict"])
    except (RuntimeError, KeyError, TypeError, ValueError, AttributeError):  # keys or shapes do not fit
        raise refused(f"its weights do not fit the '{ckpt['arch']}' network") from None
    return net.eval()


def digits_weights(path) -> None:
    """The check of `--weights` for the digits extractor: the file loads with the loader the scoring uses."""
    load_digits_classifier(input_file(path, "digits classifier weights"))
