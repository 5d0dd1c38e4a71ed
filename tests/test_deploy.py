"""Deployment files, checked without a Docker daemon: compose.yaml, the Dockerfile (hadolint),
and docker/entrypoint.sh run as a script against SQLite and Postgres (twice at once there).

The image build itself runs only where a Docker daemon answers; elsewhere it skips, saying so.
A fresh-venv `pip install .` test needs the package index and minutes, so it runs only when
SYNCAGENT_TEST_PIP_INSTALL=1 (`make test-install`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from state.store import StateStore, schema_head
from tests.fixtures.sandbox import SandboxFactory

ROOT = Path(__file__).resolve().parents[1]
ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"
BIN = Path(sys.executable).parent


def _compose() -> dict[str, Any]:
    document = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert isinstance(document, dict)
    return document


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(BIN)) or shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: it is pinned in the dev extra (make test)")
    return found


# ------------------------------------------------------------------ compose.yaml
def test_compose_names_the_services_with_their_health_checks_and_volumes() -> None:
    compose = _compose()
    services = compose["services"]
    assert {"postgres", "agent", "dashboard", "sandbox", "demo-agent"} <= set(services)
    postgres = services["postgres"]
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    data_volume = postgres["volumes"][0].split(":")[0]
    assert data_volume in compose["volumes"]
    for name in ("agent", "dashboard", "demo-agent"):
        assert services[name]["healthcheck"]["test"] == [
            "CMD-SHELL", "syncagent-entrypoint status --check || exit 1"]
    assert "test" in services["sandbox"]["healthcheck"]


def test_compose_agent_runs_on_a_healthy_postgres_configured_by_environment_and_secrets() -> None:
    compose = _compose()
    agent = compose["services"]["agent"]
    assert agent["command"] == ["run"]
    assert "profiles" not in agent  # `docker compose up` starts it
    assert agent["depends_on"]["postgres"]["condition"] == "service_healthy"
    url = agent["environment"]["SYNCAGENT_STATE_URL"]
    assert url.startswith("postgresql+psycopg://") and "@postgres:" in url
    assert ":" not in url.split("//", 1)[1].split("@", 1)[0], "no password in the URL"
    for secret in agent["secrets"]:
        assert secret["source"] in compose["secrets"]
    assert agent["secrets"][0]["target"] == "PGPASSWORD"
    assert any(volume.endswith(":/app/mappings:ro") for volume in agent["volumes"]
               if isinstance(volume, str))
    config = next(v for v in agent["volumes"] if isinstance(v, dict))
    assert config["target"] == "/app/syncagent.yaml" and config["read_only"] is True
    assert config["bind"]["create_host_path"] is False, "a missing file must stop compose"


def test_compose_dashboard_and_demo_are_behind_profiles() -> None:
    services = _compose()["services"]
    dashboard = services["dashboard"]
    assert dashboard["command"][0] == "serve"
    # it binds every interface inside the container, so it must carry the token serve demands
    assert "0.0.0.0" in dashboard["command"]
    assert {s["target"] for s in dashboard["secrets"]} >= {"PGPASSWORD", "SYNCAGENT_WEB__TOKEN"}
    assert all(p.startswith("127.0.0.1:") for p in dashboard["ports"])
    assert services["dashboard"]["profiles"] == ["dashboard"]
    demo = services["demo-agent"]
    assert services["sandbox"]["profiles"] == ["demo"] and demo["profiles"] == ["demo"]
    assert demo["command"][:2] == ["run", "--sandbox"]
    assert demo["network_mode"] == "service:sandbox"
    assert demo["depends_on"]["sandbox"]["condition"] == "service_healthy"
    assert "sqlite" in demo["environment"]["SYNCAGENT_STATE_URL"], "a demo keeps off real state"


# ------------------------------------------------------------------ Dockerfile
def _stages(dockerfile: str) -> dict[str, str]:
    parts = re.split(r"^FROM ", dockerfile, flags=re.MULTILINE)[1:]
    return {part.split("\n", 1)[0].split(" AS ")[-1].strip(): part for part in parts}


def test_dockerfile_passes_hadolint() -> None:
    result = subprocess.run([_tool("hadolint"), "--no-color", str(ROOT / "Dockerfile")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_entrypoint_passes_shellcheck() -> None:
    result = subprocess.run([_tool("shellcheck"), "-s", "sh", str(ENTRYPOINT)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_image_is_the_agent_alone_non_root_with_a_pinned_base_and_an_honest_health_check(
        ) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    stages = _stages(dockerfile)
    assert list(stages)[-1] == "agent", "the default target is the agent"
    agent = stages["agent"]
    assert "COPY --from=build " in agent and "build-sandbox" not in agent
    assert re.search(r"^USER 10001:10001$", agent, re.MULTILINE)
    assert 'CMD ["sh", "-c", "syncagent-entrypoint status --check || exit 1"]' in agent
    assert 'ENTRYPOINT ["syncagent-entrypoint"]' in stages["runtime"]
    base = re.search(r"^FROM (python:[\d.]+-slim) AS base$", dockerfile, re.MULTILINE)
    assert base, "base image pinned by an exact tag"
    assert re.search(r"sha256:[0-9a-f]{64}", dockerfile), "its digest recorded in a comment"
    assert "[sandbox]" not in stages["build"] and "dev" not in stages["build"]


def test_the_build_context_leaves_secrets_and_local_state_out() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert {".env", "secrets/", "*.db", ".venv/", ".git/"} <= ignored
    dockerfile = (ROOT / "Dockerfile").read_text()
    for copied in re.findall(r"^COPY (?!--from)(?:--\S+ )*(\S+)", dockerfile, re.MULTILINE):
        assert copied not in ignored and f"{copied}/" not in ignored, copied


def test_image_build_runs_syncagent_version() -> None:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker CLI on this machine: the image build is checked statically only")
    info = subprocess.run([docker, "info"], capture_output=True, text=True, timeout=60)
    if info.returncode != 0:
        pytest.skip("no Docker daemon answers here (`docker info` failed): the image build "
                    "is checked statically only")
    tag = "syncagent-test:latest"
    subprocess.run([docker, "build", "-t", tag, str(ROOT)], check=True, timeout=1800)
    result = subprocess.run([docker, "run", "--rm", tag, "--version"], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.startswith("syncagent "), result.stderr


# ------------------------------------------------------------------ docker/entrypoint.sh
def _entrypoint(*args: str, state_url: str, cwd: Path, extra_env: dict[str, str] | None = None,
                ) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCAGENT_")}
    env.update({"PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
                "SYNCAGENT_STATE_URL": state_url,
                "SYNCAGENT_SECRETS_DIR": str(cwd / "no-secrets")})
    env.update(extra_env or {})
    return subprocess.Popen(["sh", str(ENTRYPOINT), *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _finish(process: subprocess.Popen[str], timeout: float = 180) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def _sync_once(sandbox_url: str, state_url: str, cwd: Path,
               extra_env: dict[str, str] | None = None) -> tuple[int, dict[str, Any], str]:
    process = _entrypoint("sync", "--once", "--json", "--sandbox", sandbox_url,
                          state_url=state_url, cwd=cwd, extra_env=extra_env)
    code, out, err = _finish(process)
    lines = out.strip().splitlines()
    return code, json.loads(lines[-1]) if code == 0 and lines else {}, err


def _migration_message(stderr: str) -> str:
    """'upgraded to' or 'already at', from `db upgrade`'s line on stderr."""
    found = re.search(r"state DB \S+: (upgraded to|already at) revision (\w+)", stderr)
    assert found, stderr
    assert found.group(2) == schema_head()
    return found.group(1)


def test_entrypoint_migrates_an_empty_sqlite_db_then_syncs(tmp_path: Path,
                                                          sandbox_factory: SandboxFactory) -> None:
    sandbox = sandbox_factory(leads=40, seed=23)
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    code, report, err = _sync_once(sandbox.url, url, tmp_path)
    assert code == 0, err
    assert _migration_message(err) == "upgraded to"
    assert report["pulled"]["Lead"] >= 40 and report["rejected"] == 0
    code, _report, err = _sync_once(sandbox.url, url, tmp_path)  # a restart: nothing to migrate
    assert code == 0, err
    assert _migration_message(err) == "already at"


def test_without_the_migration_the_first_start_fails(tmp_path: Path,
                                                     sandbox_factory: SandboxFactory) -> None:
    """What the entrypoint fixes (issue 17: the container's first start failed)."""
    sandbox = sandbox_factory(leads=20, seed=29)
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    code, _report, err = _sync_once(sandbox.url, url, tmp_path, {"SYNCAGENT_MIGRATE": "0"})
    assert code == 1 and "no schema yet" in err


def test_the_health_check_never_migrates(tmp_path: Path) -> None:
    """`status --check` goes through the entrypoint for its secrets, but must not write."""
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    StateStore(url).schema_revision()  # an empty database file, as a fresh volume would hold
    code, _out, err = _finish(_entrypoint("status", "--check", state_url=url, cwd=tmp_path))
    assert code == 2, err  # "cannot tell"; the image's HEALTHCHECK turns it into 1
    assert "upgraded" not in err
    assert StateStore(url).schema_revision() is None


def test_entrypoint_leaves_the_db_alone_for_commands_that_do_not_use_it(tmp_path: Path) -> None:
    unreachable = "postgresql+psycopg://nobody@127.0.0.1:1/none"
    code, out, err = _finish(_entrypoint("--version", state_url=unreachable, cwd=tmp_path))
    assert code == 0 and out.startswith("syncagent "), err


def test_entrypoint_exports_secret_files_named_like_variables(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    url = f"sqlite:///{tmp_path / 'from-secret.db'}"
    StateStore(url).upgrade()
    (secrets / "SYNCAGENT_STATE_URL").write_text(url + "\n")
    (secrets / "lowercase_name").write_text("ignored\n")
    process = _entrypoint("status", "--json", state_url="sqlite:///unused.db", cwd=tmp_path,
                          extra_env={"SYNCAGENT_SECRETS_DIR": str(secrets)})
    code, out, err = _finish(process)
    assert code == 0, err
    assert json.loads(out)["state"] == url
    assert not (tmp_path / "unused.db").exists()


@pytest.mark.postgres
def test_entrypoint_migrates_postgres_then_syncs(postgres_url: str, tmp_path: Path,
                                                 sandbox_factory: SandboxFactory) -> None:
    sandbox = sandbox_factory(leads=30, seed=37)
    code, report, err = _sync_once(sandbox.url, postgres_url, tmp_path)
    assert code == 0, err
    assert _migration_message(err) == "upgraded to" and report["pulled"]["Lead"] >= 30


def _wait_for_a_finished_cycle(state_url: str, processes: list[subprocess.Popen[str]]) -> None:
    store = StateStore(state_url)
    for _ in range(1200):  # bounded: about two minutes
        if any(process.poll() is not None for process in processes):
            return  # one died: its exit code and stderr tell why
        if store.schema_revision() and any(run["finished_at"] for run in
                                           store.status_summary()["runs"]):
            return
        time.sleep(0.1)
    pytest.fail("no cycle finished")


@pytest.mark.postgres
def test_two_agents_starting_at_once_on_one_postgres_migrate_once_and_share_the_lease(
        postgres_url: str, tmp_path: Path, sandbox_factory: SandboxFactory) -> None:
    """Both `run` on an empty schema at the same moment: one migrates while the other waits
    for the lock, then finds the schema current; one holds the lease and cycles."""
    sandbox = sandbox_factory(leads=30, seed=41)
    agents = [_entrypoint("run", "--sandbox", sandbox.url, state_url=postgres_url, cwd=tmp_path)
              for _ in range(2)]
    try:
        _wait_for_a_finished_cycle(postgres_url, agents)
    finally:
        for agent in agents:
            if agent.poll() is None:
                agent.send_signal(signal.SIGTERM)
        results = [_finish(agent, timeout=120) for agent in agents]
    for code, _out, err in results:
        assert code == 0, err
    assert sorted(_migration_message(err) for _c, _o, err in results) == [
        "already at", "upgraded to"]
    assert any(run["finished_at"] for run in StateStore(postgres_url).status_summary()["runs"])


# ------------------------------------------------------------------ pip install, no checkout
@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("SYNCAGENT_TEST_PIP_INSTALL") != "1",
                    reason="needs the package index and minutes: `make test-install` runs it")
def test_pip_install_then_init_then_sync_against_the_sandbox_without_a_checkout(
        tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, str(ROOT)], check=True, timeout=1200)
    site = tmp_path / "site"
    site.mkdir()
    agent = str(venv / "bin" / "syncagent")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([agent, *args], cwd=site, capture_output=True, text=True,
                              timeout=300, env={"PATH": os.environ.get("PATH", ""),
                                                "HOME": str(tmp_path)})

    fastapi = subprocess.run([str(venv / "bin" / "python"), "-c", "import fastapi"],
                             capture_output=True, text=True)
    assert fastapi.returncode != 0, "pip install . alone must not bring fastapi"
    assert run("sync", "--help").returncode == 0
    refused = run("sandbox", "--port", "0")
    assert refused.returncode == 1 and "pip install 'syncagent[sandbox]'" in refused.stderr
    shipped = run("check")
    assert shipped.returncode == 0 and "default_mappings: OK" in shipped.stdout, shipped.stderr
    assert run("init").returncode == 0
    assert run("check").stdout.startswith("mappings: OK")

    subprocess.run([*pip, f"{ROOT}[sandbox]"], check=True, timeout=1200)
    info_file = site / "sandbox-info.json"
    sandbox = subprocess.Popen([agent, "sandbox", "--port", "0", "--leads", "80", "--seed", "31",
                                "--info-file", str(info_file)], cwd=site,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):
            if info_file.is_file() and info_file.stat().st_size:
                break
            time.sleep(0.1)
        url = json.loads(info_file.read_text())["hubspot"]["base_url"]
        assert run("db", "upgrade").returncode == 0
        synced = run("sync", "--once", "--json", "--sandbox", url)
        assert synced.returncode == 0, synced.stderr
        report = json.loads(synced.stdout.strip().splitlines()[-1])
        assert report["pulled"]["Lead"] >= 80 and report["written"]["salesforce"] > 0
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=30)
