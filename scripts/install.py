#!/usr/bin/env python3
"""Create `.venv` and install Podium into it, with llama.cpp built so it runs on this CPU.

    python3 scripts/install.py                       # extras: local
    python3 scripts/install.py --extras dev,local    # what scripts/test installs
    python3 scripts/install.py --rebuild-llama       # rebuild llama-cpp-python's wheel

Standard library only, so it runs before anything is installed, on Linux and macOS.

Why a script. `llama-cpp-python` ships as source only, and its default build uses the
building CPU's every instruction set (`GGML_NATIVE`). On a CPU with AMX (Intel Sapphire
Rapids and later, common in clouds) that build includes llama.cpp's AMX matrix-multiply
path, which segfaults in `decode` (ggml-org/llama.cpp#20824). So on x86-64 the wheel is
built with `GGML_NATIVE=OFF` and an explicit AVX2/FMA/F16C set (the AVX2 tier, which every
x86-64 CPU since 2013 has; older ones get a build without it). arm64 Linux and macOS have
no AMX and keep llama.cpp's defaults (including Metal on Apple silicon).

Why a wheel folder. pip caches the wheels it builds, keyed by the source archive only, not
by `CMAKE_ARGS`: a natively built wheel from an earlier `pip install` would be reused as
is. So the wheel is built once with `--no-cache-dir --no-binary` into
`.venv/llama-wheels/<version>-<key>/`, the key being a hash of the version and the flags,
and installed from there (forcibly, when the venv holds another build). A rerun reuses it;
changing the flags or the version builds a new one.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

LLAMA_VERSION = "0.3.36"
"""The llama-cpp-python release built here; the one Podium is tested with."""

PORTABLE_X86 = ("-DGGML_NATIVE=OFF", "-DGGML_AVX=ON", "-DGGML_AVX2=ON", "-DGGML_FMA=ON",
                "-DGGML_F16C=ON")
"""The x86-64 build: the AVX2 tier, no AVX-512, no AMX."""

ROOT = Path(__file__).resolve().parents[1]


def llama_cmake_args(system: str, machine: str, cpu_flags: frozenset[str]) -> tuple[str, ...]:
    """The CMake flags to build llama.cpp with on this platform: `platform.system()`,
    `platform.machine()` and the CPU's flags (lower case, as Linux's /proc/cpuinfo names
    them). Empty: llama.cpp's defaults."""
    if machine.lower() not in ("x86_64", "amd64", "i386", "i686", "x86"):
        return ()  # arm64 (Linux, macOS) and others: no AMX, defaults are safe
    if not cpu_flags or {"avx2", "fma", "f16c"} <= cpu_flags:
        # Unknown flags: the AVX2 tier is what x86-64 CPUs of the last decade have.
        return PORTABLE_X86
    if "avx" in cpu_flags:
        return ("-DGGML_NATIVE=OFF", "-DGGML_AVX=ON", "-DGGML_AVX2=OFF", "-DGGML_FMA=OFF",
                "-DGGML_F16C=OFF")
    return ("-DGGML_NATIVE=OFF", "-DGGML_AVX=OFF", "-DGGML_AVX2=OFF", "-DGGML_FMA=OFF",
            "-DGGML_F16C=OFF")


def cpu_flags(system: str) -> frozenset[str]:
    """This CPU's feature flags, lower case; empty when they cannot be read."""
    try:
        if system == "Linux":
            for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
                if line.startswith("flags"):
                    return frozenset(line.partition(":")[2].lower().split())
        elif system == "Darwin":
            found = subprocess.run(
                ["sysctl", "-n", "machdep.cpu.features", "machdep.cpu.leaf7_features"],
                capture_output=True, text=True, check=False).stdout
            flags = frozenset(found.lower().replace(".", "_").split())
            # macOS says AVX2 and FMA, and AVX1.0 for AVX.
            return flags | ({"avx"} if "avx1_0" in flags else set())
    except OSError:
        pass
    return frozenset()


def wheel_folder(venv: Path, args: tuple[str, ...]) -> Path:
    """Where the wheel built with `args` lives: keyed by version, flags and platform."""
    key = hashlib.sha256(json.dumps(
        [LLAMA_VERSION, list(args), platform.system(), platform.machine(),
         sys.version_info[:2]]).encode()).hexdigest()[:12]
    return venv / "llama-wheels" / f"{LLAMA_VERSION}-{key}"


def _run(command: list[str], **env: str) -> None:
    print("+", " ".join(f"{k}={v!r}" for k, v in env.items()), *command, flush=True)
    subprocess.run(command, check=True, env={**os.environ, **env})


def _installed_build(venv_python: Path) -> str | None:
    """The wheel folder the venv's llama-cpp-python was installed from, as recorded."""
    marker = venv_python.parents[1] / "podium-llama-build"
    return marker.read_text().strip() if marker.is_file() else None


def install(extras: str, *, rebuild: bool, python: str) -> None:
    venv = ROOT / ".venv"
    bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
    venv_python = bin_dir / ("python.exe" if os.name == "nt" else "python")
    if not venv_python.exists():
        _run([python, "-m", "venv", str(venv)])
    pip = [str(venv_python), "-m", "pip"]
    _run([*pip, "install", "--quiet", "--upgrade", "pip"])
    system = platform.system()
    args = llama_cmake_args(system, platform.machine(), cpu_flags(system))
    folder = wheel_folder(venv, args)
    wheels = sorted(folder.glob("llama_cpp_python-*.whl")) if folder.is_dir() else []
    if rebuild or not wheels:
        for old in wheels:
            old.unlink()
        print(f"building llama-cpp-python {LLAMA_VERSION} with CMAKE_ARGS={' '.join(args)!r}"
              " (a few minutes, once)", flush=True)
        _run([*pip, "wheel", "--no-deps", "--no-cache-dir", "--no-binary", "llama-cpp-python",
              f"llama-cpp-python=={LLAMA_VERSION}", "-w", str(folder)],
             CMAKE_ARGS=" ".join(args))
        wheels = sorted(folder.glob("llama_cpp_python-*.whl"))
    marker = venv / "podium-llama-build"
    if rebuild or _installed_build(venv_python) != str(folder):
        # --force-reinstall: the venv may hold another build of the same version.
        _run([*pip, "install", "--quiet", "--force-reinstall", "--no-deps", str(wheels[-1])])
        marker.write_text(str(folder) + "\n")
    spec = f".[{extras}]" if extras else "."
    # The wheel satisfies the extras' llama-cpp-python requirement, so pip builds no other.
    _run([*pip, "install", "--quiet", str(wheels[-1]), "-e", spec])
    print(f"installed: {venv}  (llama.cpp flags: {' '.join(args) or 'defaults'})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--extras", default="local",
                        help="comma-separated extras to install (default: local)")
    parser.add_argument("--rebuild-llama", action="store_true",
                        help="rebuild llama-cpp-python's wheel even if one is there")
    parser.add_argument("--python", default=sys.executable,
                        help="the Python that creates .venv (default: this one)")
    options = parser.parse_args(argv)
    # An old system python3 (macOS's 3.9) runs this file; say so before pip fails later.
    if sys.version_info < (3, 11):  # noqa: UP036
        parser.error(f"Podium needs Python 3.11+, this is {platform.python_version()}")
    try:
        install(options.extras, rebuild=options.rebuild_llama, python=options.python)
    except subprocess.CalledProcessError as exc:
        print(f"install failed: {' '.join(map(str, exc.cmd))} exited with {exc.returncode}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
