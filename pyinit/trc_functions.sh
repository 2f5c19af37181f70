# pyinit's integrated functions for bash items: TrivialRC's say, log, warn, err, debug, run.
# Sourced by every bash item before the item itself (pyinit/shell.py). Not a user-facing file.
#
# log/warn/err/debug do not print into the task's own output: they hand one line to pyinit on
# the fd named by PYINIT_LOG_FD, and pyinit prints it as one of its own log lines, tagged with the
# item's stage and pid, exactly where TrivialRC's main log would show it.

say() {
    # TrivialRC: plain echo to stdout, only with RC_VERBOSE=true.
    if [[ "${RC_VERBOSE:-}" == "true" ]]; then echo "$@"; fi
    return 0
}

_pyinit_send() {
    # The tag is TrivialRC's [ns/pid]: pyinit says which ns (and, for a boot item in TrivialRC
    # mode, main's pid) in PYINIT_LOG_NS/PYINIT_LOG_PID; otherwise the stage and this process.
    local level=$1 message ns=${PYINIT_LOG_NS:-${PYINIT_STAGE:-main}}
    local pid=${PYINIT_LOG_PID:-$BASHPID}
    shift
    message="$*"
    message=${message//$'\n'/ }   # one message, one line
    if [[ -n "${PYINIT_LOG_FD:-}" ]] && { printf '%s\t%s\t%s\t%s\t%s\n' "$level" \
            "$ns" "$pid" "${PYINIT_TASK:-}" "$message" >&"${PYINIT_LOG_FD}"; } 2>/dev/null; then
        return 0
    fi
    # No pyinit to hand it to (the item runs on its own): print it the way TrivialRC would.
    printf '%s %s [%s/%s]: %s\n' "$(date '+%Y-%m-%d %H:%M:%S')" "${SELF_NAME:-pyinit}" \
        "$ns" "$pid" "$message" >&2
}

log() { _pyinit_send info "$@"; }
warn() { _pyinit_send warn "$@"; }
err() { _pyinit_send error "$@"; exit 1; }
debug() { _pyinit_send debug "$@"; }
run() { builtin command "$@"; }

# `ready`: this item is ready, told the way its `ready` setting asks (docs/readiness.md): a
# newline on fd N for "fd:N", READY=1 on NOTIFY_SOCKET for "notify" (systemd-notify when it is
# installed, else the Python pyinit runs on).
ready() {
    if [[ -n "${PYINIT_READY_FD:-}" ]]; then
        echo >&"${PYINIT_READY_FD}"
    elif [[ -n "${NOTIFY_SOCKET:-}" ]]; then
        if builtin command -v systemd-notify >/dev/null; then
            systemd-notify --ready
        else
            "${PYINIT_PYTHON:-python3}" -c 'import os, socket
a = os.environ["NOTIFY_SOCKET"]
socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(
    b"READY=1", "\0" + a[1:] if a.startswith("@") else a)'
        fi
    else
        _pyinit_send warn "ready: ${PYINIT_TASK:-this item} has no ready = \"notify\" or" \
            "\"fd:N\" in pyinit.toml: there is no one to tell"
        return 1
    fi
}

# The explicit way for a boot item to change the command line pyinit goes on with (add items,
# set options): `pyinit_set_args "$@" -D 'exec redis-server'`. In pyinit's own mode `set --`
# only changes the item's own "$@", so that `set -- a b; for f; do ...; done` is harmless
# (docs/boot-state.md); in TrivialRC mode `set --` changes it too, as in trc.
pyinit_set_args() {
    if [[ ${PYINIT_STAGE:-} != boot ]]; then
        _pyinit_send error "pyinit_set_args: only a boot item can change the command line"
        return 1
    elif [[ -z ${PYINIT_STATE_OUT:-} ]]; then
        _pyinit_send error "pyinit_set_args: no writable directory to pass the command line" \
            "through (tried TMPDIR, /tmp, /dev/shm, /run)"
        return 1
    fi
    _pyinit_new_args=("$@")
    _pyinit_args_set=1
}

# What a later item must see, as far as one needs it ($2: the words sh, env, args). sh: the
# variables (exported or not) and functions, for later bash items; bash's own read-only and
# dynamic variables are left out, since assigning them back would fail. env: the exported
# environment and the directory, for pyinit to start every later item with. args: the
# command line, NUL-separated. Then the mark that the item returned (not `exit`).
_pyinit_save_state() {
    local _pyinit_out=$1 _pyinit_parts=" $2 " _pyinit_name
    shift 2
    if [[ $_pyinit_parts == *" sh "* ]]; then
        {
            for _pyinit_name in $(compgen -v); do
                case $_pyinit_name in
                    BASH*|EUID|PPID|UID|SHELLOPTS|FUNCNAME|GROUPS|HISTCMD|LINENO|RANDOM|\
                    SECONDS|SRANDOM|EPOCHREALTIME|EPOCHSECONDS|PIPESTATUS|_|PWD|OLDPWD|SHLVL|\
                    DIRSTACK|COMP_*|OPTERR|OPTIND|IFS|PS4|_pyinit_*|PYINIT_*|_exit_status) continue ;;
                esac
                declare -p "$_pyinit_name" 2>/dev/null
            done
            declare -f
            printf 'builtin cd -- %q\n' "$PWD"
        } >"$_pyinit_out.sh.tmp"
        mv -f "$_pyinit_out.sh.tmp" "$_pyinit_out.sh"
    fi
    if [[ $_pyinit_parts == *" env "* ]]; then
        env -0 >"$_pyinit_out.env.tmp"
        printf '%s' "$PWD" >"$_pyinit_out.cwd.tmp"
        mv -f "$_pyinit_out.env.tmp" "$_pyinit_out.env"
        mv -f "$_pyinit_out.cwd.tmp" "$_pyinit_out.cwd"
    fi
    if [[ $_pyinit_parts == *" args "* ]]; then
        printf '%s\0' "$@" >"$_pyinit_out.args.tmp"
        mv -f "$_pyinit_out.args.tmp" "$_pyinit_out.args"
    fi
    : >"$_pyinit_out.done"
}

# Run one item: $1 is "file", "code" or "argv", $2 the path, the code or the program, the rest
# its arguments.
# Sourcing inside a function is what makes `local` and `return` work in a stage file, as in
# TrivialRC. The first failing command ends the item, as in TrivialRC: boot and halt items run
# under `set -e`; async and sync items under an ERR trap, which an item can replace (the
# process-manager example's `trap 'true' ERR` keeps its restart loop going).
_pyinit_item() {
    local _pyinit_kind=$1 _pyinit_target=$2
    shift 2
    if [[ -n "${PYINIT_STATE:-}" && -r "${PYINIT_STATE}.sh" ]]; then
        . "${PYINIT_STATE}.sh"
    fi
    case ${PYINIT_STAGE:-} in
        async|sync) set -E; trap '_pyinit_status=$?; exit $_pyinit_status' ERR ;;
        *) set -e ;;
    esac
    case $_pyinit_kind in
        file) . "$_pyinit_target" ;;
        argv) "$_pyinit_target" "$@" ;;   # TrivialRC mode's main command
        *) eval "$_pyinit_target" ;;
    esac
    set +e
    trap - ERR
    if [[ -n ${_pyinit_args_set:-} ]]; then  # the new command line may add bash items
        _pyinit_save_state "$PYINIT_STATE_OUT" "sh env args" "${_pyinit_new_args[@]}"
    elif [[ -n "${PYINIT_STATE_OUT:-}" ]]; then
        _pyinit_save_state "$PYINIT_STATE_OUT" "${PYINIT_STATE_SAVE:-}" "$@"
    fi
}
