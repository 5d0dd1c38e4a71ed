"""Build hook: ship the repository's `mappings/` folder inside the package.

`mappings/` at the repository root stays the one admin-facing copy;
a wheel gets it as `syncagent/default_mappings/`, so `pip install .` without a checkout still
has the shipped rules. An editable install copies nothing: `syncagent.defaults` finds the
checkout's own `mappings/` instead. Everything else about the build lives in pyproject.toml.
"""

from __future__ import annotations

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SOURCE = Path(__file__).parent / "mappings"
TARGET = Path("syncagent") / "default_mappings"
SHIPPED = ("*.yaml", "README.md", "schema/*.json", "examples/*.json")


def _shipped_files() -> list[Path]:
    return sorted(path.relative_to(SOURCE) for pattern in SHIPPED for path in SOURCE.glob(pattern))


class BuildPyWithMappings(build_py):
    """build_py that also copies mappings/ into the built package."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        for relative in _shipped_files():
            destination = Path(self.build_lib) / TARGET / relative
            self.mkpath(str(destination.parent))
            self.copy_file(str(SOURCE / relative), str(destination))

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        outputs = list(super().get_outputs(include_bytecode))
        if not self.editable_mode:
            outputs += [str(Path(self.build_lib) / TARGET / rel) for rel in _shipped_files()]
        return outputs


setup(cmdclass={"build_py": BuildPyWithMappings})
