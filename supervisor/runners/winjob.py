"""Windows runners: a small wrapper per runner, holding a named Job Object (Windows only).

POSIX runs each command under a ``/bin/sh`` trampoline that records the exit status and leads
the process group a stop signals. Windows has neither, so the root of a Windows runner is
:mod:`supervisor.runners.winrunner`, a small console program that:

- creates a Job Object named after its own identity (pid and create time, see
  :func:`job_name`), with kill-on-close, and puts itself in it before it starts the command,
  so the command and every process it ever starts belong to the job, even a grandchild whose
  parent has already exited (psutil's ``children()`` loses such orphans);
- holds the only handle to the job: the job, and the runners in it, outlive the supervisor
  (adoption), and a restarted supervisor opens it again by name; when the wrapper itself
  ends, the job closes and whatever the command left behind is killed, as POSIX kills what is
  left of a runner's process group;
- writes the command's exit status to the runner's exit file, so an exit while the supervisor
  was down still has its status;
- on its stop event (:func:`stop_event_name`) sends CTRL_BREAK to the command's process group,
  on the console the wrapper shares with it. The supervisor cannot do that itself: the tray
  app has no console, and GenerateConsoleCtrlEvent only reaches processes on the caller's own
  console (it fails with "invalid access" otherwise).

A polite stop (:func:`polite_stop`) sets that event and posts WM_CLOSE to the top-level windows
of the job's processes, as ``taskkill`` without ``/F`` does: console programs get CTRL_BREAK,
GUI programs a close request. After the stop timeout :func:`terminate` ends the whole job.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from ctypes import wintypes

JOB_OBJECT_ALL_ACCESS = 0x1F001F
JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE = 0x2000
JOB_OBJECT_EXTENDED_LIMIT_INFORMATION = 9
JOB_OBJECT_BASIC_PROCESS_ID_LIST = 3
EVENT_MODIFY_STATE = 0x0002
SYNCHRONIZE = 0x00100000
PROCESS_TERMINATE = 0x0001
WRAPPER_GRACE_MS = 2000  # for the wrapper to record the status once its command was ended
CREATE_NEW_PROCESS_GROUP = 0x00000200
CREATE_NO_WINDOW = 0x08000000
CTRL_BREAK_EVENT = 1
WM_CLOSE = 0x0010
TERMINATED = 1  # the exit status of processes ended by terminate()


class RunnerPopen(subprocess.Popen):
    """The wrapper's Popen, which may be dropped while the runner runs on: a supervisor that
    stops leaves its runners for the next one to adopt. Popen's finalizer would warn of a
    zombie; Windows has none (the wrapper records the status, the handle closes itself)."""

    def __del__(self) -> None:
        pass


def job_name(pid: int, create_time: float) -> str:
    """The job of the wrapper with this identity: computable by the wrapper from itself and
    by any supervisor from the runner's identity. ``Local\\``: this logon session only."""
    return f"Local\\Stratavore-runner-{pid}-{create_time:.3f}"


def stop_event_name(pid: int, create_time: float) -> str:
    """The event that asks the wrapper with this identity for a polite stop."""
    return f"Local\\Stratavore-stop-{pid}-{create_time:.3f}"


class _IoCounters(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_ulonglong)
        for name in ("ReadOps", "WriteOps", "OtherOps", "ReadBytes", "WriteBytes", "OtherBytes")
    ]


class _BasicLimits(ctypes.Structure):
    _fields_ = [
        ("PerProcessUserTimeLimit", ctypes.c_int64),
        ("PerJobUserTimeLimit", ctypes.c_int64),
        ("LimitFlags", wintypes.DWORD),
        ("MinimumWorkingSetSize", ctypes.c_size_t),
        ("MaximumWorkingSetSize", ctypes.c_size_t),
        ("ActiveProcessLimit", wintypes.DWORD),
        ("Affinity", ctypes.c_size_t),
        ("PriorityClass", wintypes.DWORD),
        ("SchedulingClass", wintypes.DWORD),
    ]


class _ExtendedLimits(ctypes.Structure):
    _fields_ = [
        ("BasicLimitInformation", _BasicLimits),
        ("IoInfo", _IoCounters),
        ("ProcessMemoryLimit", ctypes.c_size_t),
        ("JobMemoryLimit", ctypes.c_size_t),
        ("PeakProcessMemoryUsed", ctypes.c_size_t),
        ("PeakJobMemoryUsed", ctypes.c_size_t),
    ]


def _api() -> tuple:
    """kernel32 and user32 with the signatures used here (Windows only: loaded at first use)."""
    if sys.platform != "win32":  # (so the type checker reads the rest as Windows code)
        raise OSError("Job Objects are Windows'.")
    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    user32 = ctypes.WinDLL("user32", use_last_error=True)
    kernel32.CreateJobObjectW.restype = wintypes.HANDLE
    kernel32.CreateJobObjectW.argtypes = (wintypes.LPVOID, wintypes.LPCWSTR)
    kernel32.OpenJobObjectW.restype = wintypes.HANDLE
    kernel32.OpenJobObjectW.argtypes = (wintypes.DWORD, wintypes.BOOL, wintypes.LPCWSTR)
    kernel32.SetInformationJobObject.argtypes = (
        wintypes.HANDLE, ctypes.c_int, wintypes.LPVOID, wintypes.DWORD,
    )  # fmt: skip
    kernel32.QueryInformationJobObject.argtypes = (
        wintypes.HANDLE, ctypes.c_int, wintypes.LPVOID, wintypes.DWORD, wintypes.LPVOID,
    )  # fmt: skip
    kernel32.AssignProcessToJobObject.argtypes = (wintypes.HANDLE, wintypes.HANDLE)
    kernel32.TerminateJobObject.argtypes = (wintypes.HANDLE, wintypes.UINT)
    kernel32.OpenProcess.restype = wintypes.HANDLE
    kernel32.OpenProcess.argtypes = (wintypes.DWORD, wintypes.BOOL, wintypes.DWORD)
    kernel32.TerminateProcess.argtypes = (wintypes.HANDLE, wintypes.UINT)
    kernel32.GetCurrentProcess.restype = wintypes.HANDLE
    kernel32.CloseHandle.argtypes = (wintypes.HANDLE,)
    kernel32.CreateEventW.restype = wintypes.HANDLE
    kernel32.CreateEventW.argtypes = (
        wintypes.LPVOID, wintypes.BOOL, wintypes.BOOL, wintypes.LPCWSTR,
    )  # fmt: skip
    kernel32.OpenEventW.restype = wintypes.HANDLE
    kernel32.OpenEventW.argtypes = (wintypes.DWORD, wintypes.BOOL, wintypes.LPCWSTR)
    kernel32.SetEvent.argtypes = (wintypes.HANDLE,)
    kernel32.WaitForSingleObject.argtypes = (wintypes.HANDLE, wintypes.DWORD)
    kernel32.GenerateConsoleCtrlEvent.argtypes = (wintypes.DWORD, wintypes.DWORD)
    user32.EnumWindows.argtypes = (_enum_windows_proc(), wintypes.LPARAM)
    user32.GetWindowThreadProcessId.argtypes = (wintypes.HWND, ctypes.POINTER(wintypes.DWORD))
    user32.IsWindowVisible.argtypes = (wintypes.HWND,)
    user32.PostMessageW.argtypes = (wintypes.HWND, wintypes.UINT, wintypes.WPARAM, wintypes.LPARAM)
    return kernel32, user32


def _enum_windows_proc() -> type:
    if sys.platform != "win32":  # (so the type checker reads the rest as Windows code)
        raise OSError("Job Objects are Windows'.")
    return ctypes.WINFUNCTYPE(wintypes.BOOL, wintypes.HWND, wintypes.LPARAM)


_loaded: tuple | None = None


def _dlls() -> tuple:
    global _loaded
    if _loaded is None:
        _loaded = _api()
    return _loaded


def _check(ok: object, what: str) -> None:
    if sys.platform != "win32":  # (so the type checker reads the rest as Windows code)
        raise OSError("Job Objects are Windows'.")
    if not ok:
        raise ctypes.WinError(ctypes.get_last_error(), f"{what} failed")


# --- the wrapper's side ----------------------------------------------------------------------
def create_own_job(pid: int, create_time: float) -> int:
    """Create this process's job (kill-on-close) and put this process in it; the handle."""
    kernel32, _ = _dlls()
    job = kernel32.CreateJobObjectW(None, job_name(pid, create_time))
    _check(job, "CreateJobObjectW")
    limits = _ExtendedLimits()
    limits.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
    _check(
        kernel32.SetInformationJobObject(
            job, JOB_OBJECT_EXTENDED_LIMIT_INFORMATION, ctypes.byref(limits), ctypes.sizeof(limits)
        ),
        "SetInformationJobObject",
    )
    _check(kernel32.AssignProcessToJobObject(job, kernel32.GetCurrentProcess()),
           "AssignProcessToJobObject")  # fmt: skip
    return job


def create_stop_event(pid: int, create_time: float) -> int:
    """The wrapper's stop event (manual reset, not set); the handle."""
    kernel32, _ = _dlls()
    event = kernel32.CreateEventW(None, True, False, stop_event_name(pid, create_time))
    _check(event, "CreateEventW")
    return event


def wait_event(event: int) -> None:
    kernel32, _ = _dlls()
    kernel32.WaitForSingleObject(event, 0xFFFFFFFF)


def ctrl_break(group: int) -> bool:
    """CTRL_BREAK to a process group on this process's console."""
    kernel32, _ = _dlls()
    return bool(kernel32.GenerateConsoleCtrlEvent(CTRL_BREAK_EVENT, group))


# --- the supervisor's side -------------------------------------------------------------------
def _open_job(pid: int, create_time: float) -> int | None:
    kernel32, _ = _dlls()
    return kernel32.OpenJobObjectW(JOB_OBJECT_ALL_ACCESS, False, job_name(pid, create_time)) or None


def _pids(job: int) -> list[int]:
    """The pids of the processes in ``job`` (the first 1024)."""
    kernel32, _ = _dlls()

    class ProcessIdList(ctypes.Structure):  # JOBOBJECT_BASIC_PROCESS_ID_LIST
        _fields_ = [
            ("NumberOfAssignedProcesses", wintypes.DWORD),
            ("NumberOfProcessIdsInList", wintypes.DWORD),
            ("ProcessIdList", ctypes.c_size_t * 1024),
        ]

    listed = ProcessIdList()
    if not kernel32.QueryInformationJobObject(
        job, JOB_OBJECT_BASIC_PROCESS_ID_LIST, ctypes.byref(listed), ctypes.sizeof(listed), None
    ):
        return []
    return [int(p) for p in listed.ProcessIdList[: listed.NumberOfProcessIdsInList]]


def job_pids(pid: int, create_time: float) -> list[int] | None:
    """The pids of every process in the runner's job, or None when there is no such job."""
    kernel32, _ = _dlls()
    job = _open_job(pid, create_time)
    if job is None:
        return None
    try:
        return _pids(job)
    finally:
        kernel32.CloseHandle(job)


def polite_stop(pid: int, create_time: float) -> bool:
    """Ask the runner whose wrapper has this identity to stop: CTRL_BREAK to its console
    programs (through the wrapper's stop event), WM_CLOSE to its GUI programs' windows.
    False when the wrapper is gone (nothing was asked)."""
    kernel32, user32 = _dlls()
    event = kernel32.OpenEventW(EVENT_MODIFY_STATE, False, stop_event_name(pid, create_time))
    if not event:
        return False
    try:
        kernel32.SetEvent(event)
    finally:
        kernel32.CloseHandle(event)
    pids = set(job_pids(pid, create_time) or []) - {pid}
    if pids:
        windows: list[int] = []

        @_enum_windows_proc()
        def each(hwnd: int, _: int) -> bool:
            owner = wintypes.DWORD()
            user32.GetWindowThreadProcessId(hwnd, ctypes.byref(owner))
            if owner.value in pids and user32.IsWindowVisible(hwnd):
                windows.append(hwnd)
            return True

        user32.EnumWindows(each, 0)
        for hwnd in windows:
            user32.PostMessageW(hwnd, WM_CLOSE, 0, 0)
    return True


def terminate(pid: int, create_time: float) -> bool:
    """End the runner whose wrapper has this identity, with all it started: every process of
    its job but the wrapper first, so that the wrapper still records the command's status,
    then, if the wrapper has not ended within a moment, the whole job. False when there is no
    such job (the wrapper is gone, and with it the job)."""
    kernel32, _ = _dlls()
    job = _open_job(pid, create_time)
    if job is None:
        return False
    try:
        for other in set(_pids(job)) - {pid}:
            process = kernel32.OpenProcess(PROCESS_TERMINATE, False, other)
            if process:  # it may have ended meanwhile
                kernel32.TerminateProcess(process, TERMINATED)
                kernel32.CloseHandle(process)
        wrapper = kernel32.OpenProcess(SYNCHRONIZE, False, pid)
        if wrapper:  # what the command started meanwhile ends when the wrapper closes the job
            ended = kernel32.WaitForSingleObject(wrapper, WRAPPER_GRACE_MS) == 0
            kernel32.CloseHandle(wrapper)
            if ended:
                return True
        return bool(kernel32.TerminateJobObject(job, TERMINATED))
    finally:
        kernel32.CloseHandle(job)


def wrapper_command(executable: str = sys.executable, frozen: bool | None = None) -> list[str]:
    """How to start :mod:`supervisor.runners.winrunner`: from a frozen bundle,
    ``bin\\stratavore.exe`` (a console program; the tray app itself is windowed); from source,
    ``python.exe -c`` importing it from this checkout."""
    frozen = getattr(sys, "frozen", False) if frozen is None else frozen
    folder = os.path.dirname(executable)
    if frozen:
        cli = executable if os.path.basename(folder).lower() == "bin" else None
        cli = cli or os.path.join(folder, "bin", "stratavore.exe")
        return [cli, "--windows-runner"]
    if os.path.basename(executable).lower() == "pythonw.exe":  # a windowed Python: its twin
        executable = os.path.join(folder, "python.exe")
    # Not `-m supervisor.runners.winrunner`: the runner's folder and environment are the
    # command's, where this package may not be importable (a checkout), and PYTHONPATH is not
    # ours to set. `home` holds the supervisor package (this file is supervisor/runners/...).
    home = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    boot = (
        f"import sys; sys.path.insert(0, {home!r}); "
        "import supervisor.runners.winrunner as w; w.run()"
    )
    return [executable, "-c", boot]
