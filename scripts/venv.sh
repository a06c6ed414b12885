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
    .venv/bin/python -m pip install --progress-bar off -e ".[$extra]" 2>&1 \
        | grep --line-buffered -E '^(Collecting|Installing|Successfully|ERROR)' \
        | sed -u 's/^/  /'
    # grep's status is 1 when pip printed nothing it matches; pip's own status counts.
    [ "${PIPESTATUS[0]}" -eq 0 ] || { echo "pip install failed" >&2; return 1; }
    echo "$want" >"$stamp"
}
