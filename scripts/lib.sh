# Sourced by scripts/demo and scripts/test: the repo root, and a virtual environment with the
# tools that rendering and testing the template need (cookiecutter, uv, pytest, ...).
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools="$root/build/tools"

ensure_tools() {
    if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        echo "error: python3 3.11 or newer is needed (found: $(python3 --version 2>&1))" >&2
        exit 1
    fi
    if [ ! -x "$tools/bin/cookiecutter" ] || [ "$root/tests/requirements.txt" -nt "$tools/.installed" ]; then
        echo "Installing the template's tools into build/tools ..." >&2
        python3 -m venv "$tools"
        "$tools/bin/python" -m pip install --quiet --disable-pip-version-check -r "$root/tests/requirements.txt"
        touch "$tools/.installed"
    fi
    export PATH="$tools/bin:$PATH"
}
