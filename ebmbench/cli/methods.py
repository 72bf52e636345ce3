"""The plug-in commands: check a method against the contract every method keeps, and write a new
method's installable package."""

from ..checks import out_folder
from .command import Command


class CheckMethod(Command):
    """run the method contract (the one the built-ins pass) on a method: one table of pass / fail"""

    name = "check-method"

    @staticmethod
    def arguments(p):
        p.add_argument("method", help="a method id (built-in or installed plug-in) or package.module:Class")

    @staticmethod
    def check(a):
        from ..registry import get_method

        get_method(a.method)  # unknown id, import error, not a Method: one paragraph naming the plug-in

    @staticmethod
    def run(a):
        from ..contract import check_method, format_results

        results = check_method(a.method)
        print(format_results(a.method, results))
        return 0 if all(r.passed for r in results) else 1


class NewMethod(Command):
    """write an installable package with one new method (a short-run EBM that trains on digits)"""

    name = "new-method"

    @staticmethod
    def arguments(p):
        p.add_argument("name", help="the method id: a lower-case Python identifier, e.g. my_ebm")
        p.add_argument("--out", required=True, help="a new (or empty) folder for the package")

    @staticmethod
    def check(a):
        from ..plugin_template import check_name

        check_name(a.name)
        out_folder(a.out)

    @staticmethod
    def run(a):
        from ..plugin_template import write_package

        for path in write_package(a.name, a.out):
            print(path)
        print(f"next: pip install -e {a.out} && ebmbench check-method {a.name}")


COMMANDS = (CheckMethod, NewMethod)
