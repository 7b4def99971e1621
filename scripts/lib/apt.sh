# shellcheck shell=bash
# Installing Debian packages from the test scripts, one way everywhere.

# Runs a command as root: directly when we are root (CI containers have no
# sudo), through sudo otherwise.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Installs packages, refreshing the package lists once per script. The OS
# image may delete downloaded .deb files between dpkg runs; an empty
# post-invoke hook keeps a multi-package install working.
apt_install() {
    if [ -z "${APT_LISTS_UPDATED:-}" ]; then
        as_root apt-get update -qq
        APT_LISTS_UPDATED=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get -o 'DPkg::Post-Invoke::=' install -y -qq "$@" >/dev/null
}
