#!/usr/bin/env bash
# Builds the logdaemon .deb: /usr/bin/logdaemon, the built-in listeners in
# /usr/lib/logdaemon/plugins, the systemd unit, the example config as
# /etc/logdaemon/logdaemon.toml (a conffile), the man pages (made by the
# binary itself: `logdaemon man`) and the manual under /usr/share/doc.
#
#   scripts/package-deb.sh                      # cargo build --release, then package
#   scripts/package-deb.sh --from target/debug  # package binaries already built there
#   scripts/package-deb.sh --out DIR            # where the .deb goes (default: target/deb)
#   scripts/package-deb.sh --fast               # gzip -1 instead of xz (the tests: seconds, not minutes)
#
# Prints the path of the .deb on its last line. Needs dpkg-deb (Debian's
# dpkg); the package's dependencies are the Debian packages that hold the
# shared libraries the binaries link (found with ldd and dpkg -S).
set -euo pipefail
cd "$(dirname "$0")/.."

from=""
out="target/deb"
compress=(-Zxz)
while [ $# -gt 0 ]; do
    case "$1" in
        --from) from="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --fast) compress=(-Zgzip -z1); shift ;;
        *) echo "usage: $0 [--from BUILD_DIR] [--out DIR] [--fast]" >&2; exit 2 ;;
    esac
done

# The built-in listeners: every listener crate but the SDK and the example.
builtins=(file exec hot_backup email nats syslog)

if [ -z "$from" ]; then
    pkgs=(-p logdaemon)
    for b in "${builtins[@]}"; do pkgs+=(-p "logdaemon-listener-${b//_/-}"); done
    cargo build --release --quiet "${pkgs[@]}" >&2
    from="target/release"
fi

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
arch=$(dpkg --print-architecture)
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
chmod 0755 "$root"

install -D -m 0755 "$from/logdaemon" "$root/usr/bin/logdaemon"
for b in "${builtins[@]}"; do
    install -D -m 0644 "$from/liblogdaemon_listener_$b.so" \
        "$root/usr/lib/logdaemon/plugins/liblogdaemon_listener_$b.so"
done
install -D -m 0644 packaging/logdaemon.service "$root/usr/lib/systemd/system/logdaemon.service"
install -D -m 0644 packaging/logdaemon.toml "$root/etc/logdaemon/logdaemon.toml"
mkdir -p "$root/usr/share/man/man1"
"$root/usr/bin/logdaemon" man --output "$root/usr/share/man/man1"
gzip -9n "$root"/usr/share/man/man1/*.1
install -d "$root/usr/share/doc/logdaemon"
install -m 0644 README.md docs/*.md "$root/usr/share/doc/logdaemon/"

# Dependencies: the packages of the libraries the binaries link.
deps=$(for f in "$root/usr/bin/logdaemon" "$root"/usr/lib/logdaemon/plugins/*.so; do
    ldd "$f" | awk '$3 ~ /^\// { print $3 }'
done | sort -u | while read -r lib; do
    dpkg -S "$(readlink -f "$lib")" 2>/dev/null || dpkg -S "$lib" 2>/dev/null || true
done | cut -d: -f1 | sort -u | paste -sd, | sed 's/,/, /g')

install -d "$root/DEBIAN"
cat >"$root/DEBIAN/control" <<EOF
Package: logdaemon
Version: $version
Architecture: $arch
Maintainer: logdaemon developers <logdaemon@localhost>
Section: admin
Priority: optional
Depends: $deps
Description: follows live journals and feeds every entry once to listeners
 logdaemon follows a server's live journal files (Perforce p4d journals and
 rotated line logs) across truncation, rotation and compression, and feeds
 every entry, exactly once and in order, to listener plugins: a file copy,
 a hot standby over SSH, review mail, syslog, NATS, a command.
EOF
echo /etc/logdaemon/logdaemon.toml >"$root/DEBIAN/conffiles"
cat >"$root/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e
# The service's state: root only.
install -d -m 0700 /var/lib/logdaemon
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null || true
fi
EOF
cat >"$root/DEBIAN/postrm" <<'EOF'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null || true
fi
# The checkpoint stays on remove; purge removes it.
if [ "$1" = purge ]; then
    rm -rf /var/lib/logdaemon
fi
EOF
chmod 0755 "$root/DEBIAN/postinst" "$root/DEBIAN/postrm"

mkdir -p "$out"
deb="$out/logdaemon_${version}_${arch}.deb"
dpkg-deb --root-owner-group "${compress[@]}" --build "$root" "$deb" >&2
echo "$deb"
