"""scripts/install.py chooses llama.cpp's build flags from the platform alone, and the
worker refuses a build that would crash in llama.cpp's AMX path."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

from podium.models._local_worker import amx_problem

ROOT = Path(__file__).resolve().parents[2]
SAPPHIRE_RAPIDS = frozenset({"avx", "avx2", "fma", "f16c", "avx512f", "avx512bw",
                             "avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8",
                             "amx_bf16"})


def _install() -> ModuleType:
    spec = importlib.util.spec_from_file_location("podium_install", ROOT / "scripts/install.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


install = _install()


@pytest.mark.parametrize("flags", [SAPPHIRE_RAPIDS, frozenset({"avx", "avx2", "fma", "f16c"}),
                                   frozenset()])
def test_x86_64_builds_the_avx2_tier_never_native(flags: frozenset[str]) -> None:
    for system in ("Linux", "Darwin"):
        args = install.llama_cmake_args(system, "x86_64", flags)
        assert args == install.PORTABLE_X86
        assert "-DGGML_NATIVE=OFF" in args
        assert not any("AMX" in a or "AVX512" in a for a in args)


def test_an_x86_64_cpu_without_avx2_gets_a_build_without_it() -> None:
    args = install.llama_cmake_args("Linux", "x86_64", frozenset({"avx", "sse4_2"}))
    assert "-DGGML_NATIVE=OFF" in args and "-DGGML_AVX2=OFF" in args
    assert "-DGGML_AVX=ON" in args
    bare = install.llama_cmake_args("Linux", "x86_64", frozenset({"sse4_2"}))
    assert "-DGGML_AVX=OFF" in bare


@pytest.mark.parametrize(("system", "machine"), [("Linux", "aarch64"), ("Darwin", "arm64"),
                                                 ("Linux", "arm64")])
def test_arm64_keeps_llama_cpps_defaults(system: str, machine: str) -> None:
    assert install.llama_cmake_args(system, machine, frozenset({"asimd", "sve"})) == ()


def test_the_wheel_folder_is_keyed_by_version_and_flags(tmp_path: Path) -> None:
    portable = install.wheel_folder(tmp_path, install.PORTABLE_X86)
    native = install.wheel_folder(tmp_path, ("-DGGML_NATIVE=ON",))
    assert portable != native
    assert portable == install.wheel_folder(tmp_path, install.PORTABLE_X86)
    assert portable.name.startswith(install.LLAMA_VERSION + "-")


def test_readme_and_scripts_test_install_the_same_way() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first = re.findall(r"```bash\n(.*?)```", readme, re.S)[0]
    assert first.startswith("python3 scripts/install.py")
    assert "scripts/install.py" in (ROOT / "scripts/test").read_text(encoding="utf-8")
    assert "pip install" not in (ROOT / "scripts/test").read_text(encoding="utf-8")


BUILT_NATIVE = ("CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | AVX512 = 1 | "
                "AVX512_VNNI = 1 | AVX512_BF16 = 1 | AMX_INT8 = 1 | LLAMAFILE = 1 | ")
BUILT_PORTABLE = ("CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | "
                  "BMI2 = 1 | LLAMAFILE = 1 | OPENMP = 1 | REPACK = 1 | ")


def test_an_amx_build_on_an_amx_cpu_is_refused_with_the_fix() -> None:
    problem = amx_problem(BUILT_NATIVE, SAPPHIRE_RAPIDS)
    assert problem is not None
    assert "scripts/install.py --rebuild-llama" in problem and "#20824" in problem


@pytest.mark.parametrize(("info", "flags"), [
    (BUILT_PORTABLE, SAPPHIRE_RAPIDS),  # the portable build on an AMX CPU
    (BUILT_NATIVE, frozenset({"avx512f"})),  # a build with AMX code the CPU never takes
    (BUILT_PORTABLE, frozenset()),  # macOS, arm64
    (BUILT_NATIVE.replace("AMX_INT8 = 1", "AMX_INT8 = 0"), SAPPHIRE_RAPIDS),
])
def test_other_builds_and_cpus_pass(info: str, flags: frozenset[str]) -> None:
    assert amx_problem(info, flags) is None
