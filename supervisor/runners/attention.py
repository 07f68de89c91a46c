"""Where a hook becomes an attention state: what a running agent is doing (working, needs
input, finished its turn, idle), as its Claude Code hooks say or, for agents without hooks, a
heuristic from its output and CPU. One event per change, never per hook call."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from supervisor.agents import limits, profiles
from supervisor.agents.profilebook import ProfileBook
from supervisor.api.schemas import HookIn
from supervisor.core import events
from supervisor.core.states import PROCESS_STATES, Attention, RunnerState
from supervisor.runners.heartbeats import HeartbeatBook
from supervisor.runners.pausing import Pauses
from supervisor.runners.process import Sample
from supervisor.runners.projects import ProjectBook
from supervisor.runners.table import Live, RunnerTable
from supervisor.storage import queries
from supervisor.storage.models import Runner
from supervisor.storage.writes import Writes

log = logging.getLogger("stratavore.runners")
S = RunnerState
BUSY_CPU = 2.0  # percent of a core: above it, an agent without hooks counts as working
ATTENTION_SEVERITY = {
    Attention.NEEDS_INPUT: "warning",
    Attention.FINISHED_TURN: "info",
    Attention.WORKING: "debug",
    Attention.IDLE: "debug",
}
BLOCKING_NOTIFICATIONS = frozenset({"permission_prompt", "elicitation_dialog"})


def attention_of(hook: HookIn) -> tuple[Attention | None, str]:
    """What a Claude Code hook says about the run (None: nothing new), and why in words.

    Sub-agents (``agent_id`` set) run inside a turn of the main agent: their activity means
    working, and their end (``SubagentStop``) is not the turn's end. ``idle_prompt`` is
    Claude Code's own "waiting for your input" after 60 s of nobody answering."""
    event = hook.hook_event_name
    if event in ("UserPromptSubmit", "PreToolUse", "PostToolUse", "PreCompact"):
        return Attention.WORKING, f"{event} {hook.tool_name or ''}".strip()
    if event == "PermissionRequest" or (
        event == "Notification" and hook.notification_type in BLOCKING_NOTIFICATIONS
    ):
        return Attention.NEEDS_INPUT, hook.message or "waiting for permission"
    if event == "Notification" and hook.notification_type is None and hook.message:
        # versions before notification_type: the message is all there is
        if "permission" in hook.message.lower():
            return Attention.NEEDS_INPUT, hook.message
        if "waiting for your input" in hook.message.lower():
            return Attention.IDLE, hook.message
    if event == "Notification" and hook.notification_type == "idle_prompt":
        return Attention.IDLE, hook.message or "waiting for input"
    if event == "Stop" and not hook.agent_id:
        return Attention.FINISHED_TURN, "finished its turn"
    if event == "SessionStart":
        return Attention.IDLE, f"session {hook.source or 'started'}"
    return None, ""


@dataclass(eq=False, repr=False)
class AttentionWatch:
    """Each running agent's attention: changed by its hooks, or by the heuristic for agents
    without them, and written with the event that reports the change."""

    table: RunnerTable
    projects: ProjectBook
    profiles: ProfileBook
    heartbeats: HeartbeatBook
    pauses: Pauses
    writes: Writes
    clock: Callable[[], float]

    def watch(self, live: Live, now: float) -> None:
        """A (re)started agent run: its hooks or, failing them, the heuristic say what it
        does. Plain commands have no attention."""
        profile = self.profiles.profile_or_none(live.row.profile)
        live.hooked = False
        live.active_at, live.seen_offset = now, live.row.log_offset
        live.idle_after = None
        if profile is not None and not profiles.has_hooks(profile):  # the heuristic's
            live.idle_after = profile.idle_after or profiles.DEFAULT_IDLE_AFTER

    def hook(
        self,
        runner_id: int,
        token: str,
        hook: HookIn,
        now: float | None = None,
        limit: limits.LimitHit | None = None,
    ) -> str | None:
        """A Claude Code hook of the runner: its attention changes (one event per change,
        never per hook call). Sub-agents' hooks only ever mean "working". ``limit``: the
        transcript showed a usage limit (looked for off the loop at Stop)."""
        now = self.clock() if now is None else now
        runner = self.table.runner_with_token(runner_id, token)
        live = self.table.live.get(runner_id)
        if live is None or live.state not in PROCESS_STATES:
            return runner.attention  # a late SessionEnd of a finished run: nothing to change
        live.hooked = True
        self.heartbeats.last_seen[runner_id] = now  # a hook is a sign of life too
        if hook.session_id and not hook.agent_id and hook.session_id != runner.session_id:
            # /clear starts a new session in the same process: resume continues that one
            with self.writes.transaction():
                queries.update_runner(runner_id, session_id=hook.session_id)
            runner.session_id = hook.session_id
        new, why = attention_of(hook)
        if limit is not None:
            self.pauses.report_limit(runner, limit, now)
        if new is not None:
            self.set_attention(runner, new, why, now, hook.hook_event_name)
        return runner.attention

    def set_attention(
        self, runner: Runner, new: Attention, why: str, now: float, source: str
    ) -> None:
        """Change the runner's attention and write the event that reports it, in one
        transaction; the same value again is not a change."""
        old = runner.attention
        if old == new.value:
            return
        project = self.projects.name_of(runner.project_id)
        severity = ATTENTION_SEVERITY[new]
        if new is Attention.FINISHED_TURN and runner.mode == "batch":
            severity = "debug"  # a batch run's end is what its exit event reports
        with self.writes.transaction():
            queries.update_runner(runner.id, attention=new.value, attention_at=now)
            events.record(
                events.attention_type(new),
                f"runner {runner.id} ({project}) {events.ATTENTION_TITLES[new]}",
                ts=now,
                severity=severity,
                runner_id=runner.id,
                project=project,
                body=why,
                data={"attention": new.value, "previous": old, "source": source},
            )
        runner.attention, runner.attention_at = new.value, now
        log.info("attention: runner %s %s (%s)", runner.id, new.value, source)

    def heuristic(self, live: Live, sample: Sample, now: float) -> None:
        """Agents without hooks (documented as a heuristic): output or CPU means working; no
        output and no CPU for ``idle_after`` seconds means idle."""
        if live.idle_after is None or live.hooked or live.state is not S.RUNNING:
            return
        runner = live.row
        if runner.log_offset != live.seen_offset or (sample.cpu_percent or 0.0) > BUSY_CPU:
            live.active_at, live.seen_offset = now, runner.log_offset
            if runner.attention in (None, Attention.IDLE.value):
                self.set_attention(
                    runner, Attention.WORKING, "output or CPU seen (heuristic)", now, "heuristic"
                )
        elif now - live.active_at >= live.idle_after and runner.attention != Attention.IDLE:
            quiet = now - live.active_at
            quiet_for = f"{quiet:.0f} s" if quiet < 120 else f"{quiet / 60:.0f} min"
            self.set_attention(
                runner, Attention.IDLE, f"no output and no CPU for {quiet_for} (heuristic)", now,
                "heuristic",
            )  # fmt: skip
