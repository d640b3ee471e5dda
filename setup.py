"""The one compiled module: rawlab._kernels (src/rawlab/_kernels.c), the sequential loops
of the columnar fast path. Everything else is in pyproject.toml."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("rawlab._kernels", ["src/rawlab/_kernels.c"],
                             extra_compile_args=["-O3", "-Wall", "-Wextra",
                                                 "-Wno-unused-parameter"])])
