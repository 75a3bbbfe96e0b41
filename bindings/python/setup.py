"""pip install --no-build-isolation ./bindings/python

Builds exobus._exobus with the machine's own setuptools and pybind11 (Debian's
python3-setuptools and python3-pybind11: no package index needed) against the installed
ExoBus client library, found with pkg-config (`cmake --install build` puts exobus.pc in
lib/pkgconfig; set PKG_CONFIG_PATH for another prefix than /usr/local). The module links
the library's static archive, so it needs no libexobus.so at run time, only yaml-cpp.
README.md says why this and not a CMake build.
"""
import pathlib
import shlex
import subprocess

import pybind11
from setuptools import Extension, setup


def pkg_config(*options):
    try:
        output = subprocess.run(["pkg-config", *options, "exobus"], check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError) as error:
        raise SystemExit("the ExoBus client library was not found by pkg-config: install it first "
                         "(cmake --install build), and set PKG_CONFIG_PATH=PREFIX/lib/pkgconfig for a prefix "
                         f"other than /usr/local ({error})")
    return shlex.split(output)


library_dir = pathlib.Path(pkg_config("--variable=libdir")[0])
# Everything the static archive needs (yaml-cpp, pthread, rt), without the archive's own -lexobus.
system_libraries = [flag for flag in pkg_config("--static", "--libs-only-l") if flag != "-lexobus"]

setup(
    name="exobus",
    version=pkg_config("--modversion")[0],
    description="ExoBus for Python: asyncio services on a shared-memory message bus",
    python_requires=">=3.11",
    packages=["exobus"],
    package_data={"exobus": ["*.pyi", "py.typed"]},
    ext_modules=[Extension(
        "exobus._exobus",
        sources=["src/module.cpp"],
        include_dirs=[pybind11.get_include()],
        extra_compile_args=[*pkg_config("--cflags"), "-fvisibility=hidden"],
        extra_link_args=[str(library_dir / "libexobus.a"), *system_libraries],
        language="c++",
    )],
)
