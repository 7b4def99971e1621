# shellcheck shell=bash
# chat_venv: makes sure the virtual environment of the chat's Python client
# (scripts/chat-clients/requirements.txt: PyPI websockets, pinned) exists in
# the cache outside the clone, installing it when missing or when the
# requirements changed, and sets CHAT_PYTHON to its interpreter. Used by
# scripts/chat-clients.sh and scripts/cluster-test.sh.
chat_venv() {
    local requirements=scripts/chat-clients/requirements.txt
    local venv="${XDG_CACHE_HOME:-$HOME/.cache}/basalt/chat-clients/venv"
    if ! cmp -s "$requirements" "$venv/requirements.txt"; then
        echo "installing websockets into $venv"
        rm -rf "$venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
        cp "$requirements" "$venv/requirements.txt"
    fi
    CHAT_PYTHON="$venv/bin/python"
}
