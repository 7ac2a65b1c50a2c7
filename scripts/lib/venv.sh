# shellcheck shell=bash
# Sourced by scripts/serve, scripts/test, scripts/uv and .ci/run.
#
#   ensure_uv             sets UV to the pinned uv (scripts/lib/uv-requirements.txt),
#                         installing it into .tools/uv-VERSION on first use: a venv of
#                         $PYTHON whose pip installs that one wheel, hash-checked.
#   ensure_venv [EXTRA]   makes or updates the project environment ($SF_VENV, default
#                         .venv) from uv.lock: exactly the locked versions of the
#                         runtime dependencies and of each EXTRA (test, dev), and the
#                         project itself, editable. Nothing is resolved: a lock that
#                         no longer matches pyproject.toml is an error.
#
# Environment: PYTHON (default python3; 3.11 or newer) is the interpreter of both;
# UV_PROJECT_ENVIRONMENT moves the project environment and SF_TOOLS the folder of
# the pinned uv (scripts/trixie, CI's Python 3.13 job, sets both).
# Needs PyPI (or uv's cache) the first time and after the lock changes, nothing else:
# uv never downloads a Python here (UV_PYTHON_DOWNLOADS=never).

SF_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SF_VENV=${UV_PROJECT_ENVIRONMENT:-$SF_REPO/.venv}
export UV_PYTHON_DOWNLOADS=never

sf_die() {
    printf '%s\n' "$*" >&2
    exit 1
}

# The interpreter, as an absolute path, after checking it is 3.11 or newer.
sf_python() {
    local python=${PYTHON:-python3} found
    found=$("$python" -c 'import sys; print(sys.executable) if sys.version_info >= (3, 11) else sys.exit(1)' 2>/dev/null) ||
        sf_die "need Python 3.11 or newer as $python (set PYTHON=...)"
    printf '%s\n' "$found"
}

# A venv with pip at $1. Debian ships the venv module (and ensurepip) separately.
sf_make_venv() {
    local dir=$1 python
    python=$(sf_python)
    "$python" -m venv "$dir" >/dev/null 2>&1 && return 0
    rm -rf "$dir"
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing Debian's python3-venv ..." >&2
        { apt-get install -y -q python3-venv >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q python3-venv >/dev/null; }; } ||
            sf_die "cannot install python3-venv"
        "$python" -m venv "$dir" || sf_die "$python -m venv $dir failed"
    else
        sf_die "$python -m venv failed: install it with 'sudo apt-get install python3-venv'"
    fi
}

ensure_uv() {
    local requirements=$SF_REPO/scripts/lib/uv-requirements.txt version dir
    version=$(sed -n 's/^uv==\([^ ]*\).*/\1/p' "$requirements")
    [ -n "$version" ] || sf_die "no uv==VERSION line in $requirements"
    dir=${SF_TOOLS:-$SF_REPO/.tools}/uv-$version
    UV=$dir/bin/uv
    [ -x "$UV" ] && return 0
    echo "installing uv $version into .tools/ (pinned and hash-checked) ..." >&2
    rm -rf "$dir"
    sf_make_venv "$dir"
    "$dir/bin/python" -m pip install -q --disable-pip-version-check --no-deps --require-hashes \
        -r "$requirements" || { rm -rf "$dir"; sf_die "cannot install uv $version from PyPI"; }
}

ensure_venv() {
    local python extra
    local args=(--locked --inexact --quiet)
    python=$(sf_python)
    ensure_uv
    for extra in "$@"; do args+=(--extra "$extra"); done
    if [ ! -x "$SF_VENV/bin/python" ]; then
        echo "installing the project and its locked dependencies into ${SF_VENV#"$SF_REPO"/} ..." >&2
    fi
    # --inexact: leave what another script installed (scripts/test's extras stay
    # when scripts/serve syncs). --locked: install the lock as it is, and refuse one
    # that pyproject.toml has moved away from.
    (cd "$SF_REPO" && UV_PROJECT_ENVIRONMENT=$SF_VENV "$UV" sync --python "$python" "${args[@]}") ||
        sf_die "could not install from uv.lock (after editing pyproject.toml, run: scripts/uv lock)"
}
