#!/bin/sh
# Install ccproxy, the one-file proxy between Claude Code / OpenAI clients and LLM providers.
#
#   curl -fsSL https://github.com/ccproxy/ccproxy/releases/latest/download/install.sh | bash
#   sh install.sh --version 0.2.0        # a given release
#   sh install.sh --from-file ./ccproxy.pyz   # a local build, offline
#
# It needs Python 3.11+ and curl (or wget). A release has one zipapp per OS, CPU and Python
# minor (ccproxy-<os>-<arch>-py3<minor>.pyz: the wheels inside are compiled): it picks the one
# for this machine and the Python it found, verifies it against the release's SHA256SUMS, puts it
# at ~/.local/bin/ccproxy (CCPROXY_INSTALL_DIR to change), writes a starter config when there is
# none, and upgrades in place when run again.
set -eu

REPO="${CCPROXY_REPO:-ccproxy/ccproxy}"
# The Python minors each release is built for (.github/workflows/release.yml's matrix).
RELEASE_MINORS="11 12 13"

usage() {
    cat <<EOF
Install ccproxy (a single-file Python zipapp) into ${CCPROXY_INSTALL_DIR:-~/.local/bin}.

usage: install.sh [--version X.Y.Z] [--from-file PATH] [--no-init] [--help]

  --version X.Y.Z    install that release (default: the latest)
  --from-file PATH   install a local ccproxy.pyz instead of downloading one
  --no-init          do not write a starter config
  -h, --help         show this help

environment:
  CCPROXY_INSTALL_DIR   where to put the \`ccproxy\` command (default ~/.local/bin)
  CCPROXY_RELEASE_URL   where the release assets are (default: the GitHub release)
  CCPROXY_DOWNLOAD_URL  download this one file instead (verified by URL.sha256 when published)
  CCPROXY_REPO          GitHub owner/name for releases (default $REPO)
  CCPROXY_PYTHON        the Python 3.11+ interpreter to use (default: first found on PATH)
EOF
}

say() { printf '%s\n' "ccproxy install: $*"; }
die() { printf '%s\n' "ccproxy install: error: $*" >&2; exit 1; }

python_ok() {
    "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' >/dev/null 2>&1
}

python_hint() {
    case "$(uname -s 2>/dev/null)" in
        Darwin) echo "  brew install python@3.12      (https://brew.sh)" ;;
        Linux)
            id_like=""
            if [ -r /etc/os-release ]; then
                # shellcheck source=/dev/null
                id_like="$(. /etc/os-release && echo "${ID:-} ${ID_LIKE:-}")"
            fi
            case "$id_like" in
                *debian*|*ubuntu*) echo "  sudo apt-get update && sudo apt-get install -y python3.11   (or python3 on Debian 12+ / Ubuntu 23.04+)" ;;
                *fedora*|*rhel*|*centos*) echo "  sudo dnf install -y python3.11" ;;
                *arch*) echo "  sudo pacman -S python" ;;
                *alpine*) echo "  sudo apk add python3" ;;
                *suse*) echo "  sudo zypper install python311" ;;
                *) echo "  install Python 3.11 or newer with your package manager, or from https://www.python.org/downloads/" ;;
            esac ;;
        *) echo "  install Python 3.11 or newer from https://www.python.org/downloads/" ;;
    esac
}

# Prints the interpreter to use; `python3` first because the zipapp's own line is
# `#!/usr/bin/env python3`.
find_python() {
    if [ -n "${CCPROXY_PYTHON:-}" ]; then
        python_ok "$CCPROXY_PYTHON" && { echo "$CCPROXY_PYTHON"; return 0; }
        return 1
    fi
    for candidate in python3 python3.14 python3.13 python3.12 python3.11 python; do
        found="$(command -v "$candidate" 2>/dev/null)" || continue
        if python_ok "$found"; then
            echo "$found"
            return 0
        fi
    done
    return 1
}

fetch() {  # fetch URL FILE: 0 when it was downloaded
    if command -v curl >/dev/null 2>&1; then
        curl -fsSL --retry 2 -o "$2" "$1"
    elif command -v wget >/dev/null 2>&1; then
        wget -q -O "$2" "$1"
    else
        die "neither curl nor wget is installed; install one, or use --from-file"
    fi
}

sha256_of() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum "$1" | cut -d' ' -f1
    elif command -v shasum >/dev/null 2>&1; then
        shasum -a 256 "$1" | cut -d' ' -f1
    else
        return 1
    fi
}

verify() {  # verify FILE CHECKSUM_FILE [ASSET]: the line for ASSET in a SHA256SUMS file, else the first
    if [ $# -ge 3 ]; then
        expected="$(awk -v a="$3" '{ n = $2; sub(/^\*/, "", n) } n == a { print $1; exit }' "$2" | tr 'A-F' 'a-f')"
        [ -n "$expected" ] || die "SHA256SUMS has no line for $3; nothing was installed"
    else
        expected="$(cut -d' ' -f1 <"$2" | tr -d '\r\n' | tr 'A-F' 'a-f')"
    fi
    actual="$(sha256_of "$1")" || die "a checksum is published but neither sha256sum nor shasum is installed"
    [ "$expected" = "$actual" ] || die "SHA-256 mismatch: expected $expected, got $actual; nothing was installed"
    say "checksum verified (sha256 $actual)"
}

minor_of() {  # minor_of PYTHON: 12 for a Python 3.12
    "$1" -c 'import sys; print(sys.version_info[1])' 2>/dev/null
}

asset_for() {  # asset_for PYTHON: the release file for this OS, CPU and that Python
    case "$(uname -s)" in
        Linux) os=linux ;;
        Darwin) os=macos ;;
        *) die "no release build for $(uname -s); on Windows use install.ps1" ;;
    esac
    case "$(uname -m)" in
        x86_64|amd64) arch=x86_64 ;;
        aarch64|arm64) arch=arm64 ;;
        *) die "no release build for the $(uname -m) CPU; install from a checkout: pip install ." ;;
    esac
    minor="$(minor_of "$1")"
    case " $RELEASE_MINORS " in
        *" $minor "*) ;;
        *) die "no release build for Python 3.$minor (builds: $(echo "$RELEASE_MINORS" | sed 's/\([0-9][0-9]*\)/3.\1/g')); set CCPROXY_PYTHON to one of those" ;;
    esac
    echo "ccproxy-$os-$arch-py3$minor.pyz"
}

main() {
    version=""
    from_file=""
    run_init=1
    while [ $# -gt 0 ]; do
        case "$1" in
            --version) [ $# -ge 2 ] || die "--version needs a value"; version="${2#v}"; shift 2 ;;
            --version=*) version="${1#--version=}"; version="${version#v}"; shift ;;
            --from-file) [ $# -ge 2 ] || die "--from-file needs a path"; from_file="$2"; shift 2 ;;
            --from-file=*) from_file="${1#--from-file=}"; shift ;;
            --no-init) run_init=0; shift ;;
            -h|--help) usage; exit 0 ;;
            *) die "unknown option: $1 (see --help)" ;;
        esac
    done

    python="$(find_python)" || {
        printf '%s\n' "ccproxy install: error: ccproxy needs Python 3.11 or newer, and none was found${CCPROXY_PYTHON:+ (CCPROXY_PYTHON=$CCPROXY_PYTHON is older or does not run)}." >&2
        printf '%s\n' "Install it, for example:" >&2
        python_hint >&2
        exit 1
    }

    dir="${CCPROXY_INSTALL_DIR:-$HOME/.local/bin}"
    target="$dir/ccproxy"
    mkdir -p "$dir" || die "cannot create $dir"
    # A private directory next to the target: the final `mv` is a rename on one filesystem, and
    # the file inside is already called `ccproxy`, so shiv's first-run extraction (named after
    # the file) done by the check below is the one the installed command reuses.
    work="$(mktemp -d "$dir/.ccproxy-install.XXXXXX")" || die "cannot write in $dir"
    tmp="$work/ccproxy"
    sum="$work/ccproxy.sha256"
    trap 'rm -rf "$work"' EXIT
    trap 'exit 130' INT TERM

    if [ -n "$from_file" ]; then
        [ -f "$from_file" ] || die "no such file: $from_file"
        cp "$from_file" "$tmp"
        if [ -f "$from_file.sha256" ]; then
            verify "$tmp" "$from_file.sha256"
        fi
        say "installing $from_file"
    elif [ -n "${CCPROXY_DOWNLOAD_URL:-}" ]; then
        url="$CCPROXY_DOWNLOAD_URL"
        say "downloading $url"
        fetch "$url" "$tmp" || die "download failed: $url"
        if fetch "$url.sha256" "$sum" 2>/dev/null; then
            verify "$tmp" "$sum"
        else
            say "no checksum published at $url.sha256; not verified"
        fi
    else
        if [ -n "${CCPROXY_RELEASE_URL:-}" ]; then
            base="${CCPROXY_RELEASE_URL%/}"
        elif [ -n "$version" ]; then
            base="https://github.com/$REPO/releases/download/v$version"
        else
            base="https://github.com/$REPO/releases/latest/download"
        fi
        asset="$(asset_for "$python")" || exit 1
        say "downloading $base/$asset"
        fetch "$base/$asset" "$tmp" || die "download failed: $base/$asset (is there a build for this machine?)"
        fetch "$base/SHA256SUMS" "$sum" 2>/dev/null ||
            die "no SHA256SUMS at $base; refusing an unverified download (--from-file installs a file you checked)"
        verify "$tmp" "$sum" "$asset"
    fi

    # The zipapp runs with `#!/usr/bin/env python3`; when that python3 is too old, or is another
    # minor than the one chosen (the zipapp's compiled wheels are for one minor), point its first
    # line at the chosen interpreter instead.
    py3="$(command -v python3 2>/dev/null || echo python3)"
    if ! python_ok "$py3" || [ "$(minor_of "$py3")" != "$(minor_of "$python")" ]; then
        "$python" -m zipapp "$tmp" -p "$python" -o "$work/pinned" && mv -f "$work/pinned" "$tmp"
    fi
    chmod 0755 "$tmp"
    new_version="$("$python" "$tmp" version 2>&1)" || die "the downloaded file does not run: $new_version"

    if [ -f "$target" ]; then
        old_version="$("$python" "$target" version 2>/dev/null || echo "an unknown version")"
        mv -f "$tmp" "$target"
        if [ "$old_version" = "$new_version" ]; then
            say "reinstalled $target: $new_version"
        else
            say "upgraded $target: $old_version -> $new_version"
        fi
        if "$python" "$target" status >/dev/null 2>&1; then
            say "a ccproxy server is running the old version; \`ccproxy restart\` switches it"
        fi
        if "$python" "$target" service status >/dev/null 2>&1; then
            say "the ccproxy service runs the old version; restart it (Linux: systemctl --user restart ccproxy)"
        fi
    else
        mv -f "$tmp" "$target"
        say "installed $target: $new_version"
    fi

    if [ "$run_init" = 1 ]; then
        if out="$("$python" "$target" init --scope user </dev/null 2>&1)"; then
            printf '%s\n' "$out"
        else
            case "$out" in
                *"already exists"*) say "keeping the existing config" ;;
                *) say "could not write a starter config: $out" ;;
            esac
        fi
    fi

    case ":$PATH:" in
        *":$dir:"*) say "done: run \`ccproxy code\` (Claude Code through the proxy) or \`ccproxy start\`" ;;
        *)
            say "done. $dir is not on your PATH; add it, e.g.:"
            printf '    %s\n' "echo 'export PATH=\"$dir:\$PATH\"' >> ~/.profile   # bash, zsh, sh" \
                "fish_add_path $dir   # fish"
            ;;
    esac
}

main "$@"
