"""Build: the cffi extension lowprec._clib and, from the same C sources,
lowprec/liblowprec.so for C programs (lowprec.get_library())."""
import importlib.util
import os
import shutil

from setuptools import setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

ROOT = os.path.dirname(os.path.abspath(__file__))


def _load_build_script():
    spec = importlib.util.spec_from_file_location(
        "lowprec_build", os.path.join(ROOT, "lowprec", "_build.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class BuildExt(build_ext):
    """Also links the C sources into a plain shared library."""

    def run(self):
        super().run()
        b = _load_build_script()
        objs = self.compiler.compile(
            b.c_sources(), output_dir=os.path.join(self.build_temp, "shared"),
            include_dirs=["csrc"], extra_preargs=["-fPIC"] + b.CFLAGS)
        dest = "lowprec" if self.inplace else os.path.join(self.build_lib,
                                                             "lowprec")
        os.makedirs(dest, exist_ok=True)
        self.compiler.link_shared_object(
            objs, os.path.join(dest, "liblowprec.so"), libraries=["m"])


class BuildPy(build_py):
    """Ships the public header inside the package (lowprec/include)."""

    def run(self):
        super().run()
        dest = os.path.join(self.build_lib, "lowprec", "include")
        os.makedirs(dest, exist_ok=True)
        shutil.copy(os.path.join(ROOT, "csrc", "lowprec.h"), dest)


setup(
    cffi_modules=["lowprec/_build.py:ffibuilder"],
    cmdclass={"build_ext": BuildExt, "build_py": BuildPy},
)
