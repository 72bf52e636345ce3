"""Import torchvision (and torch-fidelity, which imports it) on a CPU-only torch.

The torchvision 0.28.0 wheel that matches the pinned CPU torch 2.13.0 is a CUDA build: its C
extension cannot load, and `import torchvision` then fails with
"operator torchvision::nms does not exist" while registering fake kernels for ops it never got.
Declaring the two op schemas it looks up lets the pure-Python parts load (datasets, transforms,
utils.make_grid/save_image), which is all this suite uses. Where the extension loads (GPU
machines, matching CPU wheels) nothing is declared.
"""

import sys

import torch

_guard = None


def _purge(prefix: str) -> None:
    for name in [m for m in sys.modules if m == prefix or m.startswith(prefix + ".")]:
        del sys.modules[name]


def import_torchvision():
    global _guard
    try:
        import torchvision

        return torchvision
    except RuntimeError as err:
        if "torchvision::nms does not exist" not in str(err):
            raise
    _purge("torchvision")
    _guard = torch.library.Library("torchvision", "DEF")
    _guard.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _guard.define("qnms(Tensor qdets, Tensor scores, float iou_threshold) -> Tensor")
    import torchvision

    return torchvision


def import_torch_fidelity():
    import_torchvision()
    import torch_fidelity

    return torch_fidelity
