# Sourced by demo.sh and test.sh: make `.venv` and install this project with an extra
# ("demo" or "dev") into it, only when pyproject.toml or the extra changed since the
# last install (a stamp file holds their hash), and say what is happening meanwhile.
ensure_venv() {
    local extra="$1" stamp=".venv/.installed-$1" want
    want="$(sha256sum pyproject.toml | cut -d' ' -f1) $extra $(python3 --version 2>&1)"
    if [ -x .venv/bin/python ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        return 0
    fi
    if [ ! -x .venv/bin/python ]; then
        echo "creating .venv (python3 -m venv)"
        python3 -m venv .venv
    fi
    echo "installing ev-gateway[$extra] into .venv (the first time takes a minute or two)"
    rm -f "$stamp"
    .venv/bin/python -m pip install -q --upgrade pip
    # pip's progress, one indented line per package; pip's status decides, not grep's
    if ! (
        set -o pipefail
        .venv/bin/python -m pip install --progress-bar off -e ".[$extra]" 2>&1 \
            | { grep --line-buffered -E '^(Collecting|Installing|Successfully|ERROR)' || true; } \
            | sed -u 's/^/  /'
    ); then
        echo "pip install failed; run it again when the cause is fixed" >&2
        return 1
    fi
    echo "$want" >"$stamp"
}
