"""Where the shipped mapping files are, in a wheel install and in a checkout alike.

A wheel carries them as `syncagent/default_mappings/` (copied from the repository's
`mappings/` at build time by setup.py); an editable install or a plain checkout has no copy
and uses the repository's `mappings/` folder itself, so there is only ever one source.
"""

from __future__ import annotations

from pathlib import Path

from syncagent.errors import ConfigError

PACKAGE_DIR = Path(__file__).resolve().parent
LOCAL_MAPPINGS = Path("mappings")


def packaged_mappings_dir() -> Path:
    """The folder of the mapping files shipped with this install."""
    for candidate in (PACKAGE_DIR / "default_mappings", PACKAGE_DIR.parent / "mappings"):
        if (candidate / "fields.yaml").is_file():
            return candidate
    raise ConfigError(
        "this syncagent install has no shipped mapping files",
        hint="Reinstall syncagent (pip install syncagent), or set mappings_dir to your own "
             "folder of mapping files.")


def default_mappings_dir() -> Path:
    """`./mappings` when it holds mapping files (an admin's own rules), else the shipped ones.

    An empty `./mappings` (e.g. a volume mounted with nothing in it yet) counts as absent.
    """
    if LOCAL_MAPPINGS.is_dir() and any(LOCAL_MAPPINGS.glob("*.yaml")):
        return LOCAL_MAPPINGS
    return packaged_mappings_dir()
