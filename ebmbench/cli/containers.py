"""The container command: build a method's image, print its content hash, fill a wheelhouse."""

from ..checks import input_file, out_file, out_folder
from .command import Command


class Container(Command):
    """one image per method: build it (when its content hash is new), print the hash, or fill a wheelhouse"""

    name = "container"

    @staticmethod
    def arguments(p):
        from ..container import DEFAULT_BASE

        sub = p.add_subparsers(dest="action", required=True)
        b = sub.add_parser("build", help="build a method's image unless its content hash is already built")
        b.add_argument("--method", required=True)
        b.add_argument("--out", required=True, help="record JSON (tag, image id, hash inputs, build seconds)")
        b.add_argument("--wheelhouse", required=True)
        b.add_argument("--base-image", default=DEFAULT_BASE)
        b.add_argument("--extra-ca", help="PEM file: an extra CA for networks that intercept TLS")
        h = sub.add_parser("hash", help="print a method's content hash")
        h.add_argument("--method", required=True)
        h.add_argument("--wheelhouse")
        h.add_argument("--base-image", default=DEFAULT_BASE)
        w = sub.add_parser("wheelhouse", help="pip download envs/image.txt into a folder")
        w.add_argument("--out", required=True)

    @staticmethod
    def check(a):
        from ..registry import get_method

        if a.action in ("build", "hash"):
            get_method(a.method)
        if a.action == "build":
            out_file(a.out)
            if a.extra_ca is not None:
                input_file(a.extra_ca, "--extra-ca (PEM file)")
        if a.action == "wheelhouse":
            out_folder(a.out)

    @staticmethod
    def run(a):
        from ..container import build_image, content_hash, image_inputs, make_wheelhouse

        if a.action == "build":
            r = build_image(a.method, a.out, a.wheelhouse, a.base_image, a.extra_ca)
            done = f"built in {r['build_seconds']} s" if r["built"] else "up to date (nothing built)"
            print(f"{r['tag']} {done}")
        elif a.action == "hash":
            print(content_hash(image_inputs(a.method, a.base_image, a.wheelhouse)))
        else:
            make_wheelhouse(a.out)


COMMANDS = (Container,)
