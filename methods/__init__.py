"""The registry of methods: id -> Method subclass. Each module reads like its paper."""
from .short_run import ShortRun

METHODS = {
    "short_run": ShortRun,
}
