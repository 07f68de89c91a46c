"""Provider usage limits: a run that ended at one is paused, and resumed at the reset when it
asks to be (the supervisor's scheduler holds the job); a live session that hit one is reported.
Resuming itself is :meth:`~supervisor.runners.restarts.Restarts.resume`."""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from supervisor.agents import accounts, limits, planlimits, profiles, sessions
from supervisor.agents.profilebook import ProfileBook
from supervisor.core import events, paths
from supervisor.core.settings import LiveSettings
from supervisor.core.states import RunnerState
from supervisor.runners.logpump import LOG_NAME
from supervisor.runners.planlimits import PlanLimitBook
from supervisor.runners.projects import ProjectBook
from supervisor.runners.table import RunnerTable
from supervisor.storage import queries
from supervisor.storage.models import Runner
from supervisor.storage.writes import StorageError, Writes

log = logging.getLogger("stratavore.runners")
S = RunnerState


@dataclass(eq=False, repr=False)
class Pauses:
    """Runs paused at a provider's usage limit, and their resume jobs."""

    root: Path
    table: RunnerTable
    projects: ProjectBook
    profiles: ProfileBook
    settings: LiveSettings
    writes: Writes
    clock: Callable[[], float]
    plan_limits: PlanLimitBook
    # The supervisor's scheduler: a job that resumes a paused runner at a time (UTC epoch
    # seconds), and its removal. Without them (a bare manager) nothing resumes by itself.
    _schedule: Callable[[int, float], None] | None = field(default=None, init=False)
    _cancel: Callable[[int], None] | None = field(default=None, init=False)

    def use_scheduler(
        self, schedule: Callable[[int, float], None], cancel: Callable[[int], None]
    ) -> None:
        self._schedule, self._cancel = schedule, cancel

    def find_limit(self, runner: Runner, now: float) -> limits.LimitHit | None:
        """The usage limit an agent run ended at, if it did (None for plain commands)."""
        profile = self.profiles.profile_or_none(runner.profile)
        if profile is None or profile.agent not in sessions.LIMIT_AGENTS:
            return None
        log_path = paths.run_dir(self.root, runner.id) / LOG_NAME if runner.supervised else None
        if profile.agent == "codex" and runner.session_id:
            self.record_codex_windows(runner)
        return sessions.find_limit(
            profile.agent,
            runner.session_id,
            log_path,
            runner.started_at or now,
            now,
            self.settings.zone,
        )

    def pause(
        self, runner: Runner, hit: limits.LimitHit, code: int | None, now: float, offset: int
    ) -> None:
        """RUNNING/STARTING -> PAUSED: the run ended at the provider's usage limit. It resumes
        by itself at the reset (plus a minute) when its resume_on_limit says so. The reset
        is the one the agent last reported for a spent window of its account when known
        (exact, where a message says "resets 11pm" at best)."""
        hit = self.exact_reset(runner, hit, now)
        when = limits.describe_reset(hit.resets_at, now, self.settings.zone)
        profile = self.profiles.profile_or_none(runner.profile)
        auto = runner.resume_on_limit and profiles.can_resume(profile)
        why = f"limit: {hit.message} ({when}" + ("; resumes then)" if auto else ")")
        self.table.transition(
            runner,
            S.PAUSED,
            why,
            now,
            data={"exit_code": code, "resets_at": hit.resets_at, "auto_resume": auto},
            exit_code=code,
            log_offset=offset,
            pid=None,
            create_time=None,
            limit_resets_at=hit.resets_at,
        )
        self.table.live[runner.id].end_unrecorded = None
        log.info("paused: runner %s at %s's usage limit (%s)", runner.id, hit.agent, when)
        if auto:
            self.plan_resume(runner)

    def record_codex_windows(self, runner: Runner) -> None:
        """Record the plan windows a Codex run's rollout reported last (at the run's end, as
        its limit is looked for; a worker thread may call this)."""
        rollout = sessions.session_file("codex", runner.session_id or "")
        windows = planlimits.codex_windows_in(rollout) if rollout is not None else []
        account = accounts.account_key("codex", {**os.environ, **runner.env})
        try:
            self.plan_limits.observe(
                account, "codex", windows, runner.id, self.projects.name_of(runner.project_id)
            )
        except StorageError as exc:  # a fact of the past: the next run reports it again
            log.warning("unrecorded: runner %s's plan limits: %s", runner.id, exc.message)

    def exact_reset(self, runner: Runner, hit: limits.LimitHit, now: float) -> limits.LimitHit:
        """``hit`` with the reset of its account's spent plan window, where one is recorded."""
        account = accounts.account_key(hit.agent, {**os.environ, **runner.env})
        known = self.plan_limits.exhausted_reset(account, now)
        return hit if known is None else dataclasses.replace(hit, resets_at=known)

    def plan_resume(self, runner: Runner) -> None:
        s = self.settings.current  # the delay: clocks differ, a reset is announced to the minute
        at = (runner.limit_resets_at or self.clock() + s.limit_retry) + s.limit_resume_delay
        if self._schedule is not None:
            self._schedule(runner.id, at)

    def resume_later(self, runner_id: int, at: float) -> None:
        """Try resuming again at ``at`` (the DB refused it now)."""
        if self._schedule is not None:
            self._schedule(runner_id, at)

    def unplan_resume(self, runner_id: int) -> None:
        """The paused runner was stopped, restarted or resumed by hand: no job any more."""
        if self._cancel is not None:
            self._cancel(runner_id)

    def limit_in_transcript(self, path: str, since: float | None) -> limits.LimitHit | None:
        """A usage limit at the end of a Claude Code transcript, written since the run started
        (a worker thread calls this at a Stop hook: the turn may have ended on the limit)."""
        if not path.endswith(".jsonl"):
            return None
        now = self.clock()
        return limits.scan_file_tail(
            Path(path), "claude", now, self.settings.zone, 64 * 1024, since
        )

    def report_limit(self, runner: Runner, hit: limits.LimitHit, now: float) -> None:
        """A live interactive session hit its limit: its process waits, the user is told
        when it resets (once per reset time)."""
        hit = self.exact_reset(runner, hit, now)
        if runner.limit_resets_at == hit.resets_at and hit.resets_at is not None:
            return
        project = self.projects.name_of(runner.project_id)
        reset = limits.describe_reset(hit.resets_at, now, self.settings.zone)
        with self.writes.transaction():
            queries.update_runner(runner.id, limit_resets_at=hit.resets_at)
            events.record(
                events.RUNNER_LIMIT,
                f"runner {runner.id} ({project}) hit {hit.agent}'s usage limit",
                ts=now,
                severity="warning",
                runner_id=runner.id,
                project=project,
                body=f"{hit.message} ({reset})",
                data={"resets_at": hit.resets_at},
            )
        runner.limit_resets_at = hit.resets_at
