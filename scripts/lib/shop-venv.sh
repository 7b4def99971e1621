# shellcheck shell=bash
# shop_venv: makes sure the virtual environment of the shop's payment tests
# (scripts/shop-payments/requirements.txt: PyPI localstripe, the fake Stripe
# that basalt-testkit's stripe.rs starts per test, and the official stripe
# library, pinned) exists in the cache outside the clone, installing it when
# missing or when the requirements changed, and exports TEST_SHOP_PYTHON,
# its interpreter, for the tests. Used by scripts/test.sh.
shop_venv() {
    local requirements=scripts/shop-payments/requirements.txt
    local venv="${XDG_CACHE_HOME:-$HOME/.cache}/basalt/shop-payments/venv"
    if ! cmp -s "$requirements" "$venv/requirements.txt"; then
        echo "installing localstripe and stripe into $venv"
        rm -rf "${venv:?}"
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
        cp "$requirements" "$venv/requirements.txt"
    fi
    export TEST_SHOP_PYTHON="$venv/bin/python"
}
