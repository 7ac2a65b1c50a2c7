# Sourced by scripts/serve and scripts/test: make .venv and install the
# project into it once per change of pyproject.toml.
ensure_venv() {
    local extra="${1:-}"
    local python="${PYTHON:-python3}"
    if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        echo "need Python 3.11 or newer as $python (set PYTHON=...)" >&2
        exit 1
    fi
    if [ ! -x .venv/bin/python ]; then
        if ! "$python" -m venv .venv 2>/dev/null; then
            rm -rf .venv
            # Debian ships the venv module separately.
            if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
                apt-get install -y -q python3-venv >/dev/null || { apt-get update -q && apt-get install -y -q python3-venv; }
                "$python" -m venv .venv
            else
                echo "python3 -m venv failed: install it with 'sudo apt-get install python3-venv'" >&2
                exit 1
            fi
        fi
    fi
    local target="."
    [ -n "$extra" ] && target=".[$extra]"
    local stamp=".venv/.installed-${extra:-run}-$(sha256sum pyproject.toml | cut -c1-16)"
    if [ ! -e "$stamp" ]; then
        echo "installing the project into .venv ..." >&2
        .venv/bin/python -m pip install -q --disable-pip-version-check -e "$target"
        touch "$stamp"
    fi
}
