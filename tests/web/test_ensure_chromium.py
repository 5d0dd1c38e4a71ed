"""scripts/ensure-chromium (run by `make test`) never fails the build: when apt-get cannot
install chromium it exits 0 and leaves the reason where the browser test reads it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "ensure-chromium"


def _run(tmp_path: Path, binaries: str, apt_exit: int) -> subprocess.CompletedProcess[str]:
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "apt-get").write_text(f"#!/bin/sh\necho 'E: Unable to locate package chromium'\n"
                                  f"exit {apt_exit}\n")
    (fake / "apt-get").chmod(0o755)
    (fake / "sudo").write_text("#!/bin/sh\nexit 1\n")   # no password-less sudo
    (fake / "sudo").chmod(0o755)
    env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}",
           "ENSURE_CHROMIUM_BINARIES": binaries,
           "ENSURE_CHROMIUM_NOTE": str(tmp_path / "note.txt")}
    return subprocess.run([str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60,
                          check=False)


def test_a_failed_install_exits_0_and_says_why(tmp_path: Path) -> None:
    missing = str(tmp_path / "chromedriver")
    done = _run(tmp_path, f"/bin/sh {missing}", apt_exit=100)
    assert done.returncode == 0
    note = (tmp_path / "note.txt").read_text()
    assert missing in note and "/bin/sh" not in note
    if os.geteuid() == 0:
        assert "apt-get install chromium chromium-driver failed" in note
        assert "Unable to locate package chromium" in note
    else:
        assert "cannot install packages" in note


def test_nothing_is_done_when_both_binaries_are_there(tmp_path: Path) -> None:
    done = _run(tmp_path, "/bin/sh /bin/sh", apt_exit=100)
    assert done.returncode == 0 and done.stderr == ""
    assert not (tmp_path / "note.txt").exists()
