"""The work directory: which files are stage files, how each one runs, and whether pyinit
trusts it; and reading `pyinit.toml` (spec §2-§3, docs/tasks.md).

Everything here looks at the file system and nothing else: config.py turns what it finds into
the Plan. The trust rule (`check_file_safe`) is the one for stage files, `pyinit.toml` and a
Procfile alike: pyinit runs what they say, usually as root.
"""

from __future__ import annotations

import os

from pyinit.errors import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyinit.words import How, Stage

#: The stages a file name can start with, in the order they run.
STAGES: tuple[Stage, ...] = ("boot", "async", "sync", "halt")
#: How an item runs: a program exec'd as an argv vector, or bash code (a sourced file or a string).
EXEC: How = "exec"
BASH_FILE: How = "bash-file"
BASH_CODE: How = "bash-code"
#: Left over by editors and package managers next to a real stage file (spec §2).
LEFTOVER_SUFFIXES = ("~", ".swp", ".bak", ".orig", ".rej")
LEFTOVER_INFIXES = (".dpkg-", ".rpm")


def _leftover(filename: str) -> str | None:
    """Why a stage-file look-alike is skipped, or None to run it."""
    if filename.startswith("."):
        return "hidden file"
    if filename.endswith(LEFTOVER_SUFFIXES) or any(x in filename for x in LEFTOVER_INFIXES):
        return "editor or package-manager leftover"
    return None


def _not_a_stage_file(path: str) -> str | None:
    """Why `path` is no file to run, or None. Only its status is read: a FIFO in trc.d must
    not be opened (that would block until a writer comes), nor a device trusted."""
    import stat

    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "dangling symlink"
    except OSError as e:
        raise ConfigError(f"{path}: {e.strerror}") from None
    if stat.S_ISDIR(st.st_mode):
        return "directory"
    if os.path.islink(path) and os.path.realpath(path) == os.devnull:
        return "disabled (a symlink to /dev/null)"  # the systemd idiom for masking a unit
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file (a FIFO, device or socket)"
    return None


def discover(workdir: str, stage: str, skipped: list[tuple[str, str]]) -> list[str]:
    """`trc.STAGE.*` and `trc.d/STAGE.*`, together in bytewise path order (TrivialRC's `ls`
    under the C locale, without its word splitting)."""
    found: list[str] = []
    for directory, prefix in (
        (workdir, f"trc.{stage}."),
        (os.path.join(workdir, "trc.d"), f"{stage}."),
    ):
        try:
            names = os.listdir(directory)
        except (FileNotFoundError, NotADirectoryError):
            continue
        except PermissionError as e:
            raise ConfigError(f"{directory}: cannot list the directory: {e.strerror}") from None
        for filename in names:
            if not filename.startswith(prefix) or filename == prefix:
                continue
            path = os.path.join(directory, filename)
            why = _leftover(filename)
            if why is None:
                why = _not_a_stage_file(path)
            if why is not None:
                skipped.append((path, why))
                continue
            found.append(path)
    return sorted(found, key=os.fsencode)


def near_misses(root: str) -> list[str]:
    """Warnings for files that look meant as stage files but match no stage: `async-web`,
    `web.async` or `Async.web` in trc.d (`trc.Async.web` beside it). TrivialRC skips them
    without a word; here they are named, with the name that would run."""
    warnings = []
    for directory, lead in ((root, "trc."), (os.path.join(root, "trc.d"), "")):
        try:
            names = sorted(os.listdir(directory), key=os.fsencode)
        except OSError:  # no trc.d, or unreadable: discover() says so where it matters
            continue
        for filename in names:
            name = filename[len(lead) :]
            if not filename.startswith(lead) or name == "d" or _leftover(filename):
                continue
            if any(name.startswith(f"{stage}.") for stage in STAGES):
                continue  # a stage file (or skipped by discover, which says why)
            guess = _stage_name_guess(name)
            path = os.path.join(directory, filename)
            if guess is not None and not os.path.isdir(path):
                warnings.append(
                    f"{path}: matches no stage, so it does not run (did you mean "
                    f"{lead}{guess}? stage files are named boot.*, async.*, "
                    f"sync.* or halt.*)"
                )
    return warnings


def _stage_name_guess(name: str) -> str | None:
    """`async.web` for `async-web`, `web.async`, `Async.web` or `asyncweb`; None when the
    name holds no stage word (a README in trc.d is no mistake)."""
    lower = name.lower()
    for stage in STAGES:
        at = lower.find(stage)
        if at >= 0:
            rest = (name[:at] + name[at + len(stage) :]).strip("-_. ")
            return f"{stage}.{rest or 'NAME'}"
    return None


def how_to_run(stage: str, path: str) -> tuple[str, How, tuple[str, ...]]:
    """A stage file's task name, and how it runs (EXEC or BASH_FILE) with which argv. An
    executable file runs directly; a non-executable one is sourced by bash, unless its shebang
    names another interpreter, which then runs it (spec §3)."""
    base = os.path.basename(path)
    name = (
        base[len("trc.") + len(stage) + 1 :] if base.startswith("trc.") else base[len(stage) + 1 :]
    )
    try:
        st = os.stat(path)
    except OSError as e:
        raise ConfigError(f"{path}: {e.strerror}") from None
    check_file_safe(path, st)
    mode = st.st_mode
    first = _first_line(path)
    if first.endswith(b"\r\n"):
        raise ConfigError(
            f"{path}: its lines end with CR (a CRLF file?): bash and the kernel "
            f"would see the CR as part of each line (fix: sed -i 's/\\r$//' {path})"
        )
    # An executable needs a `#!` line or to be a binary; a TrivialRC stage file that merely has
    # its exec bit set is still bash to source (execve would fail with ENOEXEC).
    if mode & 0o111 and first.startswith((b"#!", b"\x7fELF")):
        return name, EXEC, (path,)
    interpreter = _foreign_shebang(first)
    if interpreter:
        return name, EXEC, (*interpreter, path)
    return name, BASH_FILE, (path,)


def check_file_safe(path: str, st: os.stat_result) -> None:
    """Refuse a stage file or `pyinit.toml` that another user could have changed, as sudo
    refuses a writable sudoers file and sshd a writable authorized_keys: pyinit runs what they
    say, usually as root. `st` is the file's own status (a symlink is judged by its target).

    A group write bit is refused only when the group is not root's or pyinit's own (as sshd's
    StrictModes trusts a group that holds no one else): a checkout made under umask 002 is
    root:root and group-writable, and no other user can write it.
    """
    writable = st.st_mode & 0o002
    if st.st_mode & 0o020 and st.st_gid not in (0, os.getegid()):
        writable |= 0o020
    if not writable and st.st_uid in (0, os.geteuid()):
        return
    import shlex  # only on the error path

    target = os.path.realpath(path) if os.path.islink(path) else path
    shown = f"{path} -> {target}" if target != path else path
    if writable:
        who = {0o020: "its group", 0o002: "others"}.get(writable, "its group and others")
        raise ConfigError(
            f"{shown}: writable by {who}, so pyinit refuses it (fix: chmod go-w "
            f"{shlex.quote(target)})"
        )
    owner = "root" if os.geteuid() == 0 else str(os.geteuid())
    raise ConfigError(
        f"{shown}: owned by another user (uid {st.st_uid}), so pyinit refuses it "
        f"(fix: chown {owner} {shlex.quote(target)})"
    )


def _first_line(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.readline(256)
    except OSError as e:
        raise ConfigError(f"{path}: {e.strerror}") from None


def _foreign_shebang(first: bytes) -> tuple[str, ...]:
    """The interpreter of a `#!` line that is not bash or sh, else ()."""
    if not first.startswith(b"#!"):
        return ()
    words = first[2:].decode(errors="surrogateescape").split()
    if not words:
        return ()
    program = os.path.basename(
        words[1] if os.path.basename(words[0]) == "env" and len(words) > 1 else words[0]
    )
    if program in ("bash", "sh"):
        return ()
    # Linux passes everything after the interpreter as one argument (execve(2)).
    return (words[0], " ".join(words[1:])) if len(words) > 1 else (words[0],)


def read_toml(path: str) -> dict[str, object]:
    try:
        with open(path, "rb") as f:
            check_file_safe(path, os.fstat(f.fileno()))
            data = f.read()
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise ConfigError(f"{path}: {e.strerror}") from None
    import tomllib  # only when the file exists: it costs ~6 ms

    try:
        return tomllib.loads(data.decode())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    except RecursionError:  # tomllib recurses once per nesting level
        raise ConfigError(f"{path}: not valid TOML: nested too deeply") from None
