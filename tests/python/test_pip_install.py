"""The package as pip installs it, without a network, against the C++ library as
`cmake --install` installs it (bindings/python/README.md), serving on a real bus."""
import asyncio
import os
import shutil
import subprocess
import sys

from conftest import BUILD_DIR, SOURCE_DIR


def test_pip_installed_package_serves_on_a_bus(bus, tmp_path):
    prefix, site = tmp_path / "prefix", tmp_path / "site"
    subprocess.run(["cmake", "--install", BUILD_DIR, "--prefix", prefix], check=True, capture_output=True)
    # A copy: pip builds in the folder it is given, and the source tree stays as it is.
    source = shutil.copytree(SOURCE_DIR / "bindings/python", tmp_path / "source",
                             ignore=shutil.ignore_patterns("build", "*.egg-info"))
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-build-isolation", "--no-index", "--target", site, source],
        env=dict(os.environ, PKG_CONFIG_PATH=str(prefix / "lib/pkgconfig")), capture_output=True, text=True)
    assert installed.returncode == 0, installed.stdout + installed.stderr

    only_installed = {"PYTHONPATH": str(site)}
    where = subprocess.run([sys.executable, "-c", "import exobus; print(exobus.__file__)"],
                           env={**os.environ, **only_installed}, capture_output=True, text=True, check=True)
    assert where.stdout.startswith(str(site))
    bus.serve("echo", env=only_installed)
    client = bus.connect("client")

    async def ask():
        async with client:
            return await client.request("echo", {"text": "installed"}, timeout=5)

    assert asyncio.run(ask()).json()["text"] == "INSTALLED"
