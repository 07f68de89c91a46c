"""The tray icon and its menu, rebuilt from the bridge's live snapshot each time it opens."""

from __future__ import annotations

import datetime
import sys
import time
from collections.abc import Callable, Coroutine
from functools import partial
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QUrl, Signal
from PySide6.QtGui import QAction, QDesktopServices, QFont
from PySide6.QtWidgets import QFileDialog, QMenu, QSystemTrayIcon

from desktop.bridge import Bridge, Json, Snapshot, needs_user, spawn
from desktop.icons import TrayState, tray_icon
from desktop.notifications import OPEN_LOG, RESUME, STOP, Notifier
from desktop.prompt import PromptDialog, ask_prompt
from desktop.sni import TrayHosts
from desktop.startup import StartupIcon
from desktop.terminal import open_terminal, run_in_terminal
from supervisor.agents.accounts import shown

RECENT_PROJECTS = 8
NAMED_IN_TOOLTIP = 3  # runners that need the user, named in the tooltip; the rest counted
ATTENTION_WORDS = {
    "needs_input": "needs input",
    "finished_turn": "finished turn",
    "working": "working",
    "idle": "idle",
}


def tray_state(snapshot: Snapshot) -> tuple[TrayState, int]:
    running = sum(1 for r in snapshot.runners if r["state"] in ("starting", "running"))
    if snapshot.budget_warning:
        return TrayState.BUDGET, running
    if snapshot.attention:
        return TrayState.ATTENTION, running
    return (TrayState.RUNNING if running else TrayState.IDLE), running


def human_tokens(n: int | None) -> str:
    if not n:
        return "0"
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


def uptime(runner: Json, now: float | None = None) -> str:
    started = runner.get("started_at")
    if not started:
        return "-"
    began = datetime.datetime.fromisoformat(started).timestamp()
    seconds = int((now or time.time()) - began)
    if seconds < 3600:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def reset_time(text: str) -> str:
    """An API timestamp as the hour it comes round in local time: '23:00' today, else
    'Tue 09:00'."""
    moment = datetime.datetime.fromisoformat(text).astimezone()
    today = datetime.datetime.now().astimezone().date()
    return moment.strftime("%H:%M" if moment.date() == today else "%a %H:%M")


def activity(runner: Json) -> str:
    """What a runner is at beyond its state, in a few words: paused at a provider limit
    ("paused: limit, resets 23:00"), or what its running agent said it does ("needs input");
    '' when there is nothing to add."""
    if runner["state"] == "paused":
        resets = runner["limit_resets_at"]
        return "paused: limit" + (f", resets {reset_time(resets)}" if resets else "")
    if runner["state"] == "running" and runner["attention"]:
        return ATTENTION_WORDS.get(runner["attention"], runner["attention"].replace("_", " "))
    return ""


def trouble(runner: Json) -> str:
    """Why a runner of :attr:`Snapshot.attention` needs the user, in a few words."""
    if runner["attention"] == "needs_input" or runner["state"] == "paused":
        return activity(runner)
    return "backing off" if runner["state"] == "backoff" else "unresponsive"


def summary(snapshot: Snapshot) -> str:
    """The tooltip: what runs, who needs the user and why ("api: needs input"), today's
    spend."""
    running = tray_state(snapshot)[1]
    lines = ["Stratavore", f"{running} running" if running else "idle"]
    needy = snapshot.attention
    lines += [f"{r['project']}: {trouble(r)}" for r in needy[:NAMED_IN_TOOLTIP]]
    if len(needy) > NAMED_IN_TOOLTIP:
        lines.append(f"and {len(needy) - NAMED_IN_TOOLTIP} more")
    lines.append(today_line(snapshot))
    lines += plan_lines(snapshot)
    return "\n".join(lines)


def plan_lines(snapshot: Snapshot) -> list[str]:
    """A line per plan window ("5-hour: 63 %, resets 23:00"), the agent and account named
    when there is more than one."""
    found = snapshot.plan_limits
    accounts = {(f["agent"], f["account"]) for f in found}
    if len(accounts) <= 1:
        return [f["text"] for f in found]
    agents = {agent for agent, _ in accounts}
    lines = []
    for f in found:
        who = f["agent"].title()
        if len(agents) < len(accounts):  # two accounts of one agent: name the folder
            who += f" ({shown(f['account'])})"
        lines.append(f"{who} {f['text']}")
    return lines


def today_line(snapshot: Snapshot) -> str:
    today = snapshot.today
    tokens = human_tokens(today.get("total_tokens"))
    text = f"Today: {tokens} tokens, ${today.get('cost_usd', 0):.2f}"
    tightest = snapshot.tightest_budget
    if tightest is not None:
        text += f", {tightest['percent']:.0f}% of {tightest['scope']} {tightest['period']}"
    return text


class Tray(QObject):
    """Signals ask the app for windows; the tray itself only reads the snapshot and acts
    through the bridge."""

    dashboard_requested = Signal()
    sessions_requested = Signal()
    settings_requested = Signal()
    quit_requested = Signal()

    def __init__(
        self,
        bridge: Bridge,
        notifier: Notifier,
        parent: QObject | None = None,
        startup: StartupIcon | None = None,
    ) -> None:
        """``startup``: the icon already shown while the app started, taken over (its face
        stays until the bridge's first snapshot)."""
        super().__init__(parent)
        self.bridge = bridge
        self.notifier = notifier
        self.menu = QMenu()
        self.menu.aboutToShow.connect(self.rebuild)
        self.menu.aboutToShow.connect(lambda: spawn(bridge.refresh_soon()))  # fresh next time
        self.hosts = startup.hosts if startup is not None else TrayHosts(self)
        self.hosts.appeared.connect(self._host_appeared)
        self._on_sni = False  # whether the icon was made while a StatusNotifierItem host was up
        self._wanted = False  # show() was called: the icon shows, now or when a tray appears
        self._shown_state: tuple[TrayState, int] | None = None
        self._shown_tip = ""
        self.prompt: PromptDialog | None = None  # the open prompt of a background launch
        self.icon = self._make_icon(startup)
        bridge.changed.connect(self.update_icon)
        notifier.action_requested.connect(self.act)
        self.rebuild()

    def show(self) -> bool:
        """Show the icon: now when the desktop has a tray (True), else as soon as one
        appears (False): Qt docks an XEmbed icon when its tray starts, and the icon is made
        again when a StatusNotifierItem host does."""
        self._wanted = True
        self.icon.show()
        return QSystemTrayIcon.isSystemTrayAvailable()

    def hide(self) -> None:
        self._wanted = False
        self.icon.hide()

    def _make_icon(self, startup: StartupIcon | None = None) -> QSystemTrayIcon:
        """A new QSystemTrayIcon with the menu, state and tooltip (Qt chooses between
        StatusNotifierItem and XEmbed when the object is made), or the startup icon with this
        menu, its face kept until the first snapshot."""
        if startup is not None:
            self._on_sni, icon = startup.on_sni, startup.icon
            self._wanted = True  # it is shown already
        else:
            self._on_sni = self.hosts.registered()
            icon = QSystemTrayIcon(self.parent())
        icon.setContextMenu(self.menu)
        icon.activated.connect(self._activated)
        self.icon = icon
        self._shown_state, self._shown_tip = None, ""
        if startup is None or self.bridge.snapshot.status:
            self.update_icon()
        # Qt draws its own balloons on XEmbed; on a StatusNotifierItem tray it sends them to
        # the notification service, which is no fallback for that same service.
        self.notifier.fallback = icon
        self.notifier.balloons_are_own = not sys.platform.startswith("linux") or not self._on_sni
        return icon

    def _host_appeared(self) -> None:
        """A StatusNotifierItem host started after the icon was made: make it again, so it
        shows there."""
        if self._on_sni:
            return
        old = self.icon
        self._make_icon()
        if self._wanted:
            self.icon.show()
        old.hide()
        old.setContextMenu(None)  # type: ignore[arg-type]  # Qt takes a null menu; the stub no None
        old.deleteLater()

    def _activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason == QSystemTrayIcon.ActivationReason.DoubleClick:
            self.dashboard_requested.emit()

    def update_icon(self, force: bool = False) -> None:
        """Redraw the icon and tooltip, only when what they show changed (or ``force``: the
        theme did)."""
        state, running = tray_state(self.bridge.snapshot)
        tip = summary(self.bridge.snapshot)
        if force or (state, running) != self._shown_state:
            self._shown_state = (state, running)
            self.icon.setIcon(tray_icon(state, running))
        if tip != self._shown_tip:
            self._shown_tip = tip
            self.icon.setToolTip(tip)

    # --- the menu --------------------------------------------------------------------------
    def rebuild(self) -> None:
        snapshot = self.bridge.snapshot
        menu = self.menu
        menu.clear()
        self._quick_launch(menu.addMenu("Quick launch"), snapshot)
        runners = menu.addMenu(f"Runners ({len(snapshot.runners)})")
        runners.setEnabled(bool(snapshot.runners))
        for runner in snapshot.runners:
            self._runner_menu(runners, runner)
        if snapshot.runners:
            runners.addSeparator()
            self._add(runners, "Stop all", lambda: self.bridge.stop_all())
        menu.addAction("Recent sessions…").triggered.connect(self.sessions_requested.emit)
        menu.addSeparator()
        today = menu.addAction(today_line(snapshot))
        today.setEnabled(False)
        for line in plan_lines(snapshot):
            menu.addAction(line).setEnabled(False)
        pause = menu.addMenu("Pause notifications")
        if self.notifier.paused_until:
            until = datetime.datetime.fromtimestamp(self.notifier.paused_until)
            pause.setTitle(f"Notifications paused until {until:%H:%M}")
            pause.addAction("Resume now").triggered.connect(self.notifier.resume)
        pause.addAction("For 1 hour").triggered.connect(lambda: self.notifier.pause(3600))
        pause.addAction("Until tomorrow").triggered.connect(self.notifier.pause_until_tomorrow)
        menu.addSeparator()
        menu.addAction("Open dashboard").triggered.connect(self.dashboard_requested.emit)
        menu.addAction("Settings…").triggered.connect(self.settings_requested.emit)
        menu.addSeparator()
        menu.addAction("Quit Stratavore").triggered.connect(self.quit_requested.emit)

    def _quick_launch(self, menu: QMenu, snapshot: Snapshot) -> None:
        """Per project: each profile in the background (asking for a prompt first when it has
        a batch mode), and each in a terminal (``stratavore-agent --profile``: the supervisor
        renders the command line, so Claude Code gets its session id and hooks)."""
        recent = recent_projects(snapshot)
        for project in recent:
            sub = menu.addMenu(str(project["name"]))  # a str: the overload that makes a menu
            for profile in snapshot.profiles:
                if profile["batch"] is not None:
                    sub.addAction(profile["name"] + "…").triggered.connect(
                        lambda _=False, p=project, f=profile: self.launch_with_prompt(p, f)
                    )
                else:
                    name = profile["name"]
                    self._add(sub, name, partial(self.bridge.launch, project["name"], name))
            terminal = sub.addMenu("In a terminal")
            for profile in snapshot.profiles:
                terminal.addAction(str(profile["name"])).triggered.connect(
                    lambda _=False, p=project, f=profile: run_in_terminal(
                        p["name"], p["path"], profile=f["name"]
                    )
                )
        if recent:
            menu.addSeparator()
        menu.addAction("New project…").triggered.connect(self._new_project)

    def launch_with_prompt(self, project: Json, profile: Json) -> None:
        """Ask for the prompt of a batch run of ``profile`` in ``project``, then launch it."""

        async def launch(prompt: str, worktree: bool) -> None:
            await self.bridge.launch(
                project["name"], profile["name"], mode="batch", prompt=prompt, worktree=worktree
            )

        what = f"{profile['name']} in {project['name']}"
        self.prompt = ask_prompt(what, launch, worktree=profile["worktree"])

    def _runner_menu(self, parent: QMenu, runner: Json) -> None:
        sub = parent.addMenu(runner_label(runner))
        if needs_user(runner):
            bold = QFont(sub.menuAction().font())
            bold.setBold(True)
            sub.menuAction().setFont(bold)
        action = sub.addAction(OPEN_LOG)
        action.setEnabled(bool(runner.get("log_path")))
        action.triggered.connect(lambda: open_log(runner))
        sub.addAction("Open terminal here").triggered.connect(lambda: open_terminal(runner["cwd"]))
        if runner["state"] == "paused" and runner["resumable"]:
            if runner["supervised"]:
                self._add(sub, RESUME, lambda: self.resume(runner))
            else:
                sub.addAction("Resume in terminal").triggered.connect(
                    lambda: resume_in_terminal(runner)
                )
        self._add(sub, STOP, lambda: self.bridge.stop(runner["id"]))
        self._add(sub, "Restart", lambda: self.bridge.restart(runner["id"]))

    def act(self, action: str, runner_id: int) -> None:
        """A notification's button: what the runner's menu entry of that name does."""

        async def work() -> None:
            runner = await self.bridge.act(self.bridge.runner(runner_id))
            if runner is None:  # gone: the supervisor's sentence was shown
                return
            if action == OPEN_LOG:
                open_log(runner)
            elif action == RESUME:
                await self.resume(runner)
            elif action == STOP:
                await self.bridge.stop(runner_id)

        spawn(work())

    async def resume(self, runner: Json) -> None:
        """Continue a paused runner's session: by the supervisor, or in a terminal for one
        started there."""
        if runner["supervised"]:
            await self.bridge.resume(runner["id"])
        else:
            resume_in_terminal(runner)

    def _add(self, menu: QMenu, text: str, work: Callable[[], Coroutine[Any, Any, Any]]) -> QAction:
        """A menu action that runs ``work`` on the loop (never blocking the GUI thread)."""
        action = menu.addAction(text)
        action.triggered.connect(lambda _=False: spawn(work()))
        return action

    def _new_project(self) -> None:
        folder = QFileDialog.getExistingDirectory(None, "New project: choose its folder")
        if folder:
            name = "".join(c if c.isalnum() or c in "._-" else "-" for c in Path(folder).name)
            spawn(self.bridge.create_project(name.strip("-.") or "project", folder))


def runner_label(runner: Json) -> str:
    """'#12 api claude — needs input, 14m, 1.2M tokens': what it is, and its state or, when
    there is more to say, its activity."""
    what = runner["profile"] or Path(runner["command"][0]).name
    flag = " (unresponsive)" if runner["unresponsive"] else ""
    return (
        f"#{runner['id']} {runner['project']} {what} — {activity(runner) or runner['state']}"
        f"{flag}, {uptime(runner)}, {human_tokens(runner['tokens'])} tokens"
    )


def open_log(runner: Json) -> None:
    """Open a runner's log in the desktop's viewer for text files."""
    if runner.get("log_path"):
        QDesktopServices.openUrl(QUrl.fromLocalFile(runner["log_path"]))


def resume_in_terminal(runner: Json) -> None:
    """Continue a terminal runner's session in a new terminal, where it ran."""
    run_in_terminal(
        runner["project"], runner["cwd"], profile=runner["profile"], resume=runner["session_id"]
    )


def recent_projects(snapshot: Snapshot) -> list[Json]:
    """Projects with active runners first (newest launch first), then the rest by name."""
    order: dict[str, int] = {}
    for runner in reversed(snapshot.runners):
        order.setdefault(runner["project"], len(order))
    projects = sorted(
        snapshot.projects, key=lambda p: (order.get(p["name"], len(order)), p["name"])
    )
    return projects[:RECENT_PROJECTS]
