"""The packaged app. ``--selftest`` from source, passing and failing honestly (fast); then the
Linux bundle built by ``installer/build.py``: its frozen ``--selftest``, its console tools,
its tarball installing and uninstalling per user. (The Windows build and its installer are
tested under Wine in tests/windows/.)

The bundle tests need PyInstaller (the ``build`` extra), and the Debian packages
``gnome-keyring`` and ``dbus`` (for ``dbus-run-session``) for the frozen selftest's keyring
step; each skips with its reason when its tools are missing (without gnome-keyring the
keyring step is allowed to skip). One bundle is built per module run (about a minute), into a
temp dir removed afterwards.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from supervisor import __version__

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "installer" / "build.py"

PACKAGED = (
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="builds the Linux bundle"),
    pytest.mark.skipif(
        importlib.util.find_spec("PyInstaller") is None,
        reason='PyInstaller is not installed (pip install -e ".[desktop,build]")',
    ),
    pytest.mark.timeout(600),
)


def packaged(test: Callable[..., None]) -> Callable[..., None]:
    """A test of the built bundle: slow (the bundle is built once, in about a minute), Linux
    only, skipped without PyInstaller."""
    for mark in PACKAGED:
        test = mark(test)
    return test


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without the test keyring and display of other tests."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHON_KEYRING_BACKEND", "STRATAVORE_TEST_KEYRING", "DISPLAY",
                     "WAYLAND_DISPLAY", "STRATAVORE_HOME")
    }  # fmt: skip
    return {**env, **extra}


def run(command: list[str], timeout: float = 300, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, **kwargs)


def selftest_from_source(**env: str) -> subprocess.CompletedProcess[str]:
    """``python -m desktop --selftest`` from this checkout, in the test's environment (its
    file keyring from tests/keyring_backend.py) with ``env`` on top."""
    full = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(REPO), **env}
    full.pop("DISPLAY", None)
    return run([sys.executable, "-m", "desktop", "--selftest"], timeout=60, cwd=REPO, env=full)


def test_selftest_from_source_passes() -> None:
    done = selftest_from_source()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok: keyring " in done.stdout and "tests.keyring_backend" in done.stdout
    assert done.stdout.splitlines()[-1].startswith("selftest passed in ")


def test_selftest_without_keyring_fails_with_one_sentence() -> None:
    done = selftest_from_source(PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    assert done.returncode == 1
    assert done.stdout.splitlines()[-1] == (
        "selftest failed: keyring: There is no usable keyring to keep secrets in: install "
        "gnome-keyring or KWallet (Secret Service) and run Stratavore in a desktop session "
        "with a running DBus session bus (set STRATAVORE_SELFTEST_ALLOW_NO_KEYRING=1 to skip "
        "this step)."
    )


def test_selftest_may_skip_the_keyring_when_allowed() -> None:
    done = selftest_from_source(
        PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
        STRATAVORE_SELFTEST_ALLOW_NO_KEYRING="1",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "skipped: keyring (There is no usable keyring" in done.stdout


@dataclass
class Built:
    bundle: Path  # the onedir folder
    tarball: Path
    seconds: float  # how long build.py took


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    out = tmp_path_factory.mktemp("build")
    started = time.monotonic()
    done = run(
        [sys.executable, str(BUILD), "--skip-tests", "--dist", str(out / "dist"),
         "--work", str(out / "work")],
        timeout=540, cwd=REPO, env=clean_env(),
    )  # fmt: skip
    seconds = time.monotonic() - started
    assert done.returncode == 0, f"build.py failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    tarball = out / "dist" / f"Stratavore-{__version__}-linux-x86_64.tar.gz"
    assert tarball.exists(), done.stdout
    assert tarball.name in (out / "dist" / "SHA256SUMS").read_text()
    yield Built(out / "work" / "bundle" / "Stratavore", tarball, seconds)
    shutil.rmtree(out, ignore_errors=True)


@packaged
def test_frozen_selftest(built: Built, tmp_path: Path) -> None:
    exe = built.bundle / "stratavore-desktop"
    env = clean_env(QT_QPA_PLATFORM="offscreen", HOME=str(tmp_path))
    keyring_tools = shutil.which("dbus-run-session") and shutil.which("gnome-keyring-daemon")
    if keyring_tools:  # a keyring of its own, unlocked, on a private session bus
        script = (
            "printf selftest | gnome-keyring-daemon --unlock --components=secrets >/dev/null"
            ' && exec "$0" --selftest'
        )
        command = ["dbus-run-session", "--", "sh", "-c", script, str(exe)]
    else:
        env["STRATAVORE_SELFTEST_ALLOW_NO_KEYRING"] = "1"
        command = [str(exe), "--selftest"]
    started = time.monotonic()
    done = run(command, timeout=60, env=env)
    seconds = time.monotonic() - started
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("Stratavore selftest (frozen, linux")
    for step in ("imports", "spawned process", "supervisor and runner", "chart"):
        assert any(line.startswith(f"ok: {step} ") for line in lines), done.stdout
    keyring = "ok: keyring " if keyring_tools else "skipped: keyring "
    assert any(line.startswith(keyring) for line in lines), done.stdout
    assert lines[-1].startswith("selftest passed")
    assert seconds < 10, f"the frozen selftest took {seconds:.1f} s"
    print(f"build {built.seconds:.0f} s, frozen selftest {seconds:.1f} s")


@packaged
def test_frozen_console_tools(built: Built, tmp_path: Path) -> None:
    version = run([str(built.bundle / "stratavore"), "--version"], timeout=30, env=clean_env())
    assert (version.returncode, version.stdout.strip()) == (0, f"stratavore {__version__}")
    # every command's module is in the bundle, though main.py imports them by name
    home = clean_env(STRATAVORE_HOME=str(tmp_path / "home"))
    status = run([str(built.bundle / "stratavore"), "status"], timeout=30, env=home)
    assert status.returncode == 3 and "No Stratavore supervisor is running" in status.stderr
    listed = run([str(built.bundle / "stratavore"), "restore", "--list"], timeout=30, env=home)
    assert (listed.returncode, listed.stderr) == (0, ""), listed.stdout
    agent = run([str(built.bundle / "stratavore-agent")], timeout=30, env=clean_env())
    assert agent.returncode == 2 and "nothing to run" in agent.stderr


@packaged
def test_tarball_installs_and_uninstalls_per_user(built: Built, tmp_path: Path) -> None:
    with tarfile.open(built.tarball) as tar:
        safe = {"filter": "tar"} if hasattr(tarfile, "tar_filter") else {}  # 3.11.4+
        tar.extractall(tmp_path / "unpacked", **safe)
    top = tmp_path / "unpacked" / f"Stratavore-{__version__}"
    for name in ("stratavore-desktop", "stratavore", "stratavore-agent", "install.sh",
                 "stratavore.desktop", "icons/hicolor/256x256/apps/stratavore.png"):  # fmt: skip
        assert (top / name).exists(), name
    home = tmp_path / "user"
    data = home / ".local" / "share"
    (data / "Stratavore").mkdir(parents=True)
    (data / "Stratavore" / "stratavore.db").write_text("the user's data")
    env = clean_env(HOME=str(home), PATH=os.environ["PATH"])
    env.pop("XDG_DATA_HOME", None)

    done = run(["sh", str(top / "install.sh")], timeout=60, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    app = data / "stratavore-app"
    entry = (data / "applications" / "stratavore.desktop").read_text()
    assert f'Exec="{app}/stratavore-desktop"' in entry
    assert (data / "icons" / "hicolor" / "48x48" / "apps" / "stratavore.png").exists()
    linked = run([str(home / ".local" / "bin" / "stratavore"), "--version"], env=env)
    assert linked.stdout.strip() == f"stratavore {__version__}"

    done = run(["sh", str(top / "install.sh"), "--uninstall"], timeout=60, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert not app.exists() and not (home / ".local" / "bin" / "stratavore").exists()
    assert not (data / "applications" / "stratavore.desktop").exists()
    assert (data / "Stratavore" / "stratavore.db").read_text() == "the user's data"
    shutil.rmtree(tmp_path / "unpacked")  # 230 MB; pytest keeps the temp dirs of 3 runs
