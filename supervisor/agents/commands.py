"""Finding the program a runner will run, the way the user's own shell would, and making the
argument list safe to execute.

A GUI app started from a desktop session gets a minimal PATH (no ``~/.local/bin``, no nvm or
Homebrew dirs), so ``claude`` would not be found. The user's login shell is asked for its PATH
once, and that PATH is searched after the supervisor's own.

On Windows npm installs every CLI as a ``.cmd`` batch shim (npm's cmd-shim). CreateProcess runs
a batch file through cmd.exe, which parses the arguments again, so a prompt holding ``&`` or
``%`` could run commands (BatBadBut, CVE-2024-24576). :func:`exec_argv` runs what the shim
would run directly, and escapes, or refuses, the arguments of any other batch file.
"""

from __future__ import annotations

import functools
import ntpath
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from supervisor.core.errors import ApiError, ErrorCode

LOGIN_SHELL_TIMEOUT = 3.0

DEFAULT_PATHEXT = ".COM;.EXE;.BAT;.CMD"
BATCH_EXTS = (".bat", ".cmd")
# The only extensions CreateProcess starts by itself; others PATHEXT may list (.JS, .VBS, .PY)
# need a file association, which Popen does not use.
RUNNABLE_EXTS = (".com", ".exe", *BATCH_EXTS)

# npm cmd-shim for a `#!/usr/bin/env node` bin: node.exe beside the shim, else node on PATH
_SHIM_NODE_PROG = re.compile(
    r'IF EXIST "%dp0%\\node\.exe" \(\s*SET "_prog=%dp0%\\node\.exe"\s*\) ELSE \(\s*'
    r'SET "_prog=node"\s',
    re.IGNORECASE,
)
# ... whose last line runs `"%_prog%" <shebang args> "%dp0%\<script>" %*`
_SHIM_NODE_RUN = re.compile(r'"%_prog%"((?: +[^\s"%^&|<>()]+)*) +"%dp0%\\([^"%]+)" +%\*\s*$', re.M)
# npm cmd-shim for a bin without a shebang, a native executable: `"%dp0%\<exe>"   %*`
_SHIM_NATIVE_RUN = re.compile(r'^"%dp0%\\([^"%]+\.exe)" +%\*\s*$', re.M | re.IGNORECASE)
# `#!/usr/bin/env -S KEY=VALUE node` shims set variables first: only cmd.exe would set them
_SHIM_VARIABLES = re.compile(r"^@SET ", re.M | re.IGNORECASE)
# Characters cmd.exe acts on outside quotes; a caret makes each literal, as cross-spawn does.
# `%` is not here: no caret stops %VAR% expansion, so such arguments are refused instead.
_CMD_META = re.compile(r'([()!^"<>&|])')


@functools.cache
def login_shell_path() -> str:
    """The login shell's PATH, or '' when it can't be had (Windows, no $SHELL, a slow rc)."""
    shell = os.environ.get("SHELL")
    if os.name == "nt" or not shell or os.environ.get("STRATAVORE_NO_LOGIN_PATH"):
        return ""
    try:
        out = subprocess.run(
            [shell, "-l", "-c", 'printf "\\n__PATH__%s" "$PATH"'],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=LOGIN_SHELL_TIMEOUT,
            text=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    # rc files may print banners: take only what follows our marker
    _, _, path = out.rpartition("__PATH__")
    return path.strip()


def search_path(base: str | None = None) -> str:
    """The PATH runners get: the supervisor's own, then the login shell's extra entries."""
    own = (base if base is not None else os.environ.get("PATH", "")).split(os.pathsep)
    extra = [p for p in login_shell_path().split(os.pathsep) if p and p not in own]
    return os.pathsep.join([p for p in own if p] + extra)


def find_program(
    names: Sequence[str], path: str, platform: str = sys.platform, pathext: str | None = None
) -> str | None:
    """The first of ``names`` (bare program names) found on ``path``, a PATH string, or None.

    On win32: the PATHEXT extensions CreateProcess can start, a native .com/.exe before a
    .bat/.cmd of the same name in the same folder, and never the extensionless POSIX script npm
    writes beside its shims. The folders are searched here rather than by ``shutil.which`` so
    tests on any OS can ask for Windows rules. Elsewhere it is ``shutil.which`` (executable bit).
    """
    if platform != "win32":
        for name in names:
            found = shutil.which(name, path=path)
            if found is not None:
                return found
        return None
    listed = pathext if pathext is not None else os.environ.get("PATHEXT") or DEFAULT_PATHEXT
    listed_exts = dict.fromkeys(ext.strip().lower() for ext in listed.split(";"))
    # natives before batch files; sorted() is stable, so PATHEXT order holds within each kind
    exts = sorted((e for e in listed_exts if e in RUNNABLE_EXTS), key=lambda e: e in BATCH_EXTS)
    folders = [entry.strip('"') for entry in path.split(";") if entry.strip('"')]
    for name in names:
        if ntpath.splitext(name)[1].lower() in RUNNABLE_EXTS:
            candidates = [name]
        else:
            candidates = [name + ext for ext in exts]
        for folder in folders:
            for candidate in candidates:
                full = os.path.join(folder, candidate)
                if os.path.isfile(full):
                    return full
    return None


def exec_argv(argv: list[str], platform: str = sys.platform) -> list[str]:
    """The argument list to execute for ``argv``, whose program is already a path.

    Unchanged unless ``platform`` is win32 and the program is a batch file (.cmd/.bat), which
    CreateProcess would hand to cmd.exe, re-parsing every argument (BatBadBut, CVE-2024-24576).
    An npm cmd-shim is bypassed: what it runs is run directly, as ``[node, script, *args]`` or
    ``[exe, *args]``; ``node`` stays a bare name for the caller to resolve when no ``node.exe``
    sits beside the shim. Any other batch file, or one that can't be read, goes through
    :func:`_through_cmd`.
    """
    program = argv[0]
    if platform != "win32" or not program.lower().endswith(BATCH_EXTS):
        return argv
    try:
        with open(program, encoding="utf-8", errors="replace") as shim:
            text = shim.read()
    except OSError:
        return _through_cmd(argv)
    return _unshim(program, text, argv[1:]) or _through_cmd(argv)


def _unshim(shim: str, text: str, args: list[str]) -> list[str] | None:
    """What the npm cmd-shim ``shim`` (its ``text``) would run with ``args``, or None if it is
    not one we can run without cmd.exe."""
    if _SHIM_VARIABLES.search(text):
        return None
    native = _SHIM_NATIVE_RUN.search(text)
    if native:
        return [_beside(shim, native[1]), *args]
    run = _SHIM_NODE_RUN.search(text)
    if run is None or _SHIM_NODE_PROG.search(text) is None:
        return None
    has_node = os.path.isfile(os.path.join(os.path.dirname(shim), "node.exe"))
    node = _beside(shim, "node.exe") if has_node else "node"
    return [node, *run[1].split(), _beside(shim, run[2]), *args]


def _beside(shim: str, relative: str) -> str:
    r"""The shim's ``%dp0%\relative`` as a normal Windows path (%dp0% is the shim's folder)."""
    return ntpath.normpath(ntpath.dirname(shim) + "\\" + relative)


def _through_cmd(argv: list[str]) -> list[str]:
    """``argv``, a batch file and its arguments, as an explicit cmd.exe command line.

    The safe option: an argument holding ``%``, ``"`` or a line break is refused, since nothing
    escapes those through both cmd.exe's parse and the batch file's own ``%*`` (``%VAR%`` expands
    even inside quotes, a quote flips cmd's quoting, a line break ends the command). Every other
    argument is quoted per the MSVCRT rules and caret-escaped as cross-spawn does, so
    ``&|<>()^!`` reach the batch file literally and inside quotes. ``/d`` skips AutoRun,
    ``/v:off`` turns off ``!VAR!`` expansion, ``/s /c "..."`` strips just the outer quotes.

    The last element is a finished command line: the caller must give CreateProcess the list
    joined with spaces, as one string, because ``subprocess.list2cmdline`` would quote it again.
    """
    batch = argv[0]
    stem, ext = ntpath.splitext(ntpath.basename(batch))
    for arg in argv[1:]:
        if any(char in arg for char in '%"\r\n'):
            raise ApiError(
                ErrorCode.INVALID,
                f"{stem} is a batch file ({ext.lower()}), which cannot receive this argument "
                "safely on Windows; install the agent's native build or remove % / quotes / "
                "line breaks from the prompt.",
            )
    escaped = [_CMD_META.sub(r"^\1", _msvcrt_quote(arg)) for arg in argv[1:]]
    line = " ".join([f'"{batch}"', *escaped])
    return ["cmd.exe", *CMD_SWITCHES, f'"{line}"']


CMD_SWITCHES = ["/d", "/v:off", "/s", "/c"]


def popen_args(argv: list[str]) -> list[str] | str:
    """What to hand ``subprocess.Popen`` on Windows: the list, except for the explicit
    cmd.exe line of :func:`_through_cmd`, which must go as one finished string."""
    if len(argv) == 6 and argv[1:5] == CMD_SWITCHES:
        return " ".join(argv)
    return argv


def _msvcrt_quote(arg: str) -> str:
    """``arg`` in double quotes, read back whole by the MSVCRT argument parser. It holds no
    quote (refused), so only trailing backslashes, which would escape the closing quote, are
    doubled."""
    trailing = len(arg) - len(arg.rstrip("\\"))
    return '"' + arg + "\\" * trailing + '"'


def resolve(argv: list[str], cwd: str, path: str, *, platform: str = sys.platform) -> list[str]:
    """``argv`` ready to execute: its program made absolute (a batch shim replaced by what it
    runs, see :func:`exec_argv`), or ApiError naming what was searched. ``platform`` picks the
    lookup rules, so tests can ask for Windows ones."""
    program = argv[0]
    if os.sep in program or (os.altsep and os.altsep in program):
        candidate = Path(cwd, program).resolve() if not os.path.isabs(program) else Path(program)
        if not (candidate.is_file() and os.access(candidate, os.X_OK)):
            raise ApiError(
                ErrorCode.COMMAND_NOT_FOUND,
                f"command '{program}' is not an executable file (looked at {candidate}).",
            )
        found = str(candidate)
    else:
        on_path = find_program([program], path, platform)
        if on_path is None:
            raise ApiError(
                ErrorCode.COMMAND_NOT_FOUND,
                f"command '{program}' not found on PATH (searched: {path or '(empty)'}).",
            )
        found = on_path
    run = exec_argv([found, *argv[1:]], platform)
    if run[0] == found or ntpath.basename(run[0]) != run[0]:
        return run
    # a bare "node" or "cmd.exe" from exec_argv: only a native program, or BatBadBut is back
    helper = find_program([run[0]], path, platform, pathext=".COM;.EXE")
    if helper is None:
        raise ApiError(
            ErrorCode.COMMAND_NOT_FOUND,
            f"command '{run[0]}' not found on PATH (searched: {path or '(empty)'}).",
        )
    return [helper, *run[1:]]


def default_shell() -> str:
    """The user's shell, for the built-in ``shell`` profile's ``{shell}`` placeholder."""
    if os.name == "nt":
        return os.environ.get("COMSPEC", "cmd.exe")
    return os.environ.get("SHELL") or "/bin/sh"
