# shellcheck shell=bash
# Sourced by scripts/test and scripts/demo: the repository root, root check, and a cargo that works
# under sudo (which resets PATH and HOME to root's).

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo" || exit 1

need_root() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "$1 needs root (network namespaces): sudo $1" >&2
        exit 1
    fi
}

# Finds cargo: on PATH, else in the invoking user's rustup install (sudo hides it).
find_cargo() {
    command -v cargo >/dev/null 2>&1 && return 0
    local home
    for home in "$HOME" "$(getent passwd "${SUDO_USER:-root}" | cut -d: -f6)"; do
        if [ -n "$home" ] && [ -x "$home/.cargo/bin/cargo" ]; then
            export PATH="$home/.cargo/bin:$PATH"
            [ -n "${RUSTUP_HOME:-}" ] || [ ! -d "$home/.rustup" ] || export RUSTUP_HOME="$home/.rustup"
            [ -n "${CARGO_HOME:-}" ] || export CARGO_HOME="$home/.cargo"
            return 0
        fi
    done
    echo "cargo not found: install Rust (rustup) first" >&2
    exit 1
}

# Where cargo puts binaries of a profile directory (debug, release).
bin_dir() {
    echo "${CARGO_TARGET_DIR:-$repo/target}/$1"
}
