"""The first run: a small window that finds the user's agents and the folders they used them in,
adds those folders as projects in one click, imports past usage, and says where the tray icon
lives.

Agents are found on the PATH runners get (the login shell's, ``supervisor.agents.commands``); their
folders are read from the agents' own logs, in the places the usage importers read (Claude
Code's transcripts carry ``cwd`` on each line, a Codex rollout's ``session_meta`` its ``cwd``,
Gemini CLI's ``projects.json`` maps each folder it worked in), so ``CLAUDE_CONFIG_DIR``,
``CODEX_HOME`` and ``GEMINI_CLI_HOME`` apply. It shows once per data dir: a marker file says
it was seen, and a user with projects already never sees it.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop.bridge import Bridge, BridgeError, spawn
from desktop.icons import app_icon
from desktop.tray import human_tokens
from supervisor.agents import commands
from supervisor.core import paths
from supervisor.usage.claude import claude_roots
from supervisor.usage.codex import codex_files, codex_homes
from supervisor.usage.gemini import gemini_dir

AGENT_PROGRAMS = ("claude", "codex", "gemini", "aider", "opencode", "qwen")
MARKER = "welcomed"  # in the data dir: the first run is over
MAX_FOLDERS = 12  # the most recently used, offered as projects
READ_LINES = 50  # of a log, to find its folder: it is on the first lines
CODEX_FILES = 300  # newest rollouts looked at


@dataclass
class Found:
    agents: dict[str, str] = field(default_factory=dict)  # name -> where it is
    folders: dict[str, set[str]] = field(default_factory=dict)  # folder -> agents used there
    _used: dict[str, float] = field(default_factory=dict)  # folder -> last used (mtime)

    def saw(self, folder: object, agent: str, when: float) -> None:
        if not isinstance(folder, str) or not folder or not os.path.isdir(folder):
            return
        self.folders.setdefault(folder, set()).add(agent)
        self._used[folder] = max(self._used.get(folder, 0.0), when)

    def recent(self) -> list[tuple[str, list[str]]]:
        """Folders, most recently used first, with the agents used in each."""
        ordered = sorted(self.folders, key=lambda f: self._used[f], reverse=True)
        return [(f, sorted(self.folders[f])) for f in ordered[:MAX_FOLDERS]]


def _first_value(path: Path, key: str) -> object:
    """``key`` of the first JSON line of ``path`` that has it (top level or in ``payload``)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as lines:
            for _, line in zip(range(READ_LINES), lines, strict=False):
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict):
                    payload = record.get("payload")
                    if key in record:
                        return record[key]
                    if isinstance(payload, dict) and key in payload:
                        return payload[key]
    except OSError:
        pass
    return None


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def discover(env: dict[str, str] | None = None, path: str | None = None) -> Found:
    """The agents on the runners' PATH and the folders their logs say they worked in."""
    env = dict(os.environ) if env is None else env
    found = Found()
    search = path if path is not None else commands.search_path()
    for name in AGENT_PROGRAMS:
        where = commands.find_program([name], search)
        if where:
            found.agents[name] = where
    for root in claude_roots(env):  # projects/<folder key>/<session>.jsonl: newest per folder
        for project in (root / "projects").iterdir():
            transcripts = sorted(project.glob("*.jsonl"), key=_mtime, reverse=True)
            if transcripts:
                found.saw(_first_value(transcripts[0], "cwd"), "claude", _mtime(transcripts[0]))
    rollouts = sorted(codex_files(codex_homes(env)), key=_mtime, reverse=True)[:CODEX_FILES]
    for rollout in rollouts:
        found.saw(_first_value(rollout, "cwd"), "codex", _mtime(rollout))
    registry = gemini_dir(env) / "projects.json"
    try:
        projects = json.loads(registry.read_text("utf-8")).get("projects", {})
    except (OSError, ValueError, AttributeError):
        projects = {}
    for folder, slug in projects.items() if isinstance(projects, dict) else ():
        used = _mtime(gemini_dir(env) / "tmp" / str(slug))
        found.saw(folder, "gemini", used or _mtime(registry))
    return found


def project_name(folder: str, taken: set[str]) -> str:
    """A project name from the folder's name (letters, digits, '.', '_', '-'), made unique."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(folder).name).strip("-.") or "project"
    name, n = base[:64], 2
    while name in taken:
        name, n = f"{base[:60]}-{n}", n + 1
    return name


def short(folder: str) -> str:
    """``folder`` with the home folder as ``~``."""
    home = str(Path.home())
    return "~" + folder[len(home) :] if folder.startswith(home + os.sep) else folder


def where_the_tray_is() -> str:
    """Where to look for the tray icon on this system, in a sentence."""
    if sys.platform == "win32":
        return ("Stratavore lives in the notification area at the bottom right of the taskbar "
                "(behind the ^ arrow until you drag it out).")  # fmt: skip
    if sys.platform == "darwin":
        return "Stratavore lives in the menu bar at the top right of the screen."
    return ("Stratavore lives in your panel's tray (on GNOME, with the AppIndicator "
            "extension). Closing this window keeps it running there.")  # fmt: skip


def first_run(root: Path) -> bool:
    """Whether this data dir has not had its welcome yet."""
    return not (root / MARKER).exists()


def folder_list(recent: list[tuple[str, list[str]]], parent: QWidget) -> QListWidget:
    """The folders offered as projects, each checked, with the agents used there; as tall as
    its rows (up to 8), hidden when there are none."""
    folders = QListWidget(parent)
    for folder, used in recent:
        item = QListWidgetItem(f"{Path(folder).name}  ·  {', '.join(used)}  ·  {short(folder)}")
        item.setToolTip(folder)
        item.setData(Qt.ItemDataRole.UserRole, folder)
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
        item.setCheckState(Qt.CheckState.Checked)
        folders.addItem(item)
    folders.setVisible(bool(recent))
    folders.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    folders.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # long paths: …/middle/…
    rows = max(1, min(len(recent), 8))  # as tall as its rows, up to 8
    folders.setFixedHeight(folders.sizeHintForRow(0) * rows + 2 * folders.frameWidth() + 4)
    return folders


class Welcome(QDialog):
    """The welcome window. ``finished_setup`` is emitted once the projects are added and the
    past usage imported."""

    finished_setup = Signal(int)  # how many projects were added

    def __init__(self, bridge: Bridge, root: Path, found: Found,
                 parent: QWidget | None = None) -> None:  # fmt: skip
        super().__init__(parent)
        self.bridge, self.root = bridge, root
        self.setWindowTitle("Welcome to Stratavore")
        self.setWindowIcon(app_icon())
        self.setMinimumWidth(520)
        layout = QVBoxLayout(self)
        agents = ", ".join(found.agents) or "none yet"
        intro = QLabel(
            f"<b>Stratavore watches your AI coding agents.</b><br>Agents found on your PATH: "
            f"{agents}."
        )
        intro.setWordWrap(True)
        layout.addWidget(intro)
        recent = found.recent()
        self.folders = folder_list(recent, self)
        what = QLabel(
            "Folders your agents worked in recently: add them as projects, and Stratavore "
            "imports what they used so far."
            if recent
            else "No folder from your agents' logs yet. Add a project from the tray's menu "
            "(Quick launch ▸ New project…), or with `stratavore new NAME --path FOLDER`."
        )
        what.setWordWrap(True)
        layout.addWidget(what)
        layout.addWidget(self.folders)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        layout.addWidget(self.progress)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        tray = QLabel(where_the_tray_is())
        tray.setWordWrap(True)
        layout.addWidget(tray)
        buttons = QDialogButtonBox()
        self.add = QPushButton(f"Add {len(recent)} projects and import usage")
        self.add.setDefault(True)
        self.add.setVisible(bool(recent))
        self.add.clicked.connect(lambda: spawn(self.set_up()))
        buttons.addButton(self.add, QDialogButtonBox.ButtonRole.AcceptRole)
        self.close_button = buttons.addButton(QDialogButtonBox.StandardButton.Close)
        self.close_button.clicked.connect(self.close)
        self.close_button.setDefault(not recent)
        self.folders.itemChanged.connect(self._count)
        layout.addWidget(buttons)

    def _chosen(self) -> list[str]:
        items = [self.folders.item(i) for i in range(self.folders.count())]
        return [i.data(Qt.ItemDataRole.UserRole) for i in items
                if i.checkState() == Qt.CheckState.Checked]  # fmt: skip

    def _count(self) -> None:
        chosen = len(self._chosen())
        self.add.setText(f"Add {chosen} projects and import usage")
        self.add.setEnabled(chosen > 0)

    async def set_up(self) -> None:
        """Add the chosen folders as projects, then import past usage: one step of the
        progress bar each."""
        chosen = self._chosen()
        self.add.setEnabled(False)
        self.folders.setEnabled(False)
        self.progress.setRange(0, len(chosen) + 1)
        self.progress.setValue(0)
        self.progress.setVisible(True)
        existing = await self.bridge.projects()
        taken = {p["name"] for p in existing}
        known = {p["path"] for p in existing}
        added, problems = 0, []
        for folder in chosen:
            if folder not in known:
                name = project_name(folder, taken)
                self.status.setText(f"Adding {name}…")
                try:
                    await self.bridge.add_project(name, folder)
                    taken.add(name)
                    added += 1
                except BridgeError as exc:
                    problems.append(exc.message)
            self.progress.setValue(self.progress.value() + 1)
        self.status.setText("Importing your agents' past usage…")
        try:
            await self.bridge.import_usage()
            totals = (await self.bridge.usage("daily"))["totals"]
            done = (f"Past usage imported: {human_tokens(totals.get('total_tokens'))} tokens, "
                    f"${totals.get('cost_usd') or 0:.2f} so far.")  # fmt: skip
        except BridgeError as exc:
            done = f"The usage import failed: {exc.message}"
        self.progress.setValue(self.progress.maximum())
        self.status.setText(" ".join([f"Added {added} projects.", done, *problems]))
        self.close_button.setDefault(True)
        await self.bridge.refresh()
        self.finished_setup.emit(added)

    def done(self, result: int) -> None:  # closing it, by any button or the window's X
        paths.write_private(self.root / MARKER, "")
        super().done(result)


async def show_if_first_run(bridge: Bridge, root: Path) -> Welcome | None:
    """The welcome window on a first run with no project yet (kept by the caller), else
    None; a data dir that already has projects is marked as welcomed."""
    if not first_run(root):
        return None
    if await bridge.projects():
        paths.write_private(root / MARKER, "")
        return None
    found = await asyncio.get_running_loop().run_in_executor(None, discover)  # a login shell
    window = Welcome(bridge, root, found)
    window.show()
    window.raise_()
    return window
