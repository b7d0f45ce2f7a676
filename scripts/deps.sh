#!/usr/bin/env bash
# Installs what the tests need when it is missing (Debian: apt-get; Python:
# pip): logrotate, sshd and the ssh tools, openssl, the compressors, the
# headers libssh2 builds against, libfaketime (clock jumps), rsyslog with
# its RELP and GnuTLS modules, aiosmtpd, and a C compiler and make (the
# example C listener).
# Sourced by scripts/test.sh and scripts/torture.sh.
missing=()
command -v logrotate >/dev/null || missing+=(logrotate)
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
for t in ssh ssh-keygen ssh-agent ssh-add; do command -v $t >/dev/null || { missing+=(openssh-client); break; }; done
command -v openssl >/dev/null || missing+=(openssl)
command -v gzip >/dev/null || missing+=(gzip)
command -v bzip2 >/dev/null || missing+=(bzip2)
command -v xz >/dev/null || missing+=(xz-utils)
command -v zstd >/dev/null || missing+=(zstd)
command -v pkg-config >/dev/null || missing+=(pkg-config)
dpkg -s libssl-dev >/dev/null 2>&1 || missing+=(libssl-dev)
dpkg -s libfaketime >/dev/null 2>&1 || missing+=(libfaketime)
[ -x /usr/sbin/rsyslogd ] || missing+=(rsyslog)
dpkg -s rsyslog-relp >/dev/null 2>&1 || missing+=(rsyslog-relp)
dpkg -s rsyslog-gnutls >/dev/null 2>&1 || missing+=(rsyslog-gnutls)
command -v cc >/dev/null || missing+=(gcc)
command -v make >/dev/null || missing+=(make)
command -v nats-server >/dev/null || missing+=(nats-server) # the nats listener's tests
command -v systemd-analyze >/dev/null || missing+=(systemd) # `systemd-analyze verify` on the installed unit
command -v man >/dev/null || missing+=(man-db) # the installed man pages are in man's path
command -v dpkg-deb >/dev/null || missing+=(dpkg) # scripts/package-deb.sh, dpkg -i of the .deb
command -v chromium >/dev/null || missing+=(chromium) # the status page's test (headless)
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
python3 -c 'import aiosmtpd' 2>/dev/null || python3 -m pip install -q aiosmtpd
python3 -c 'import nats' 2>/dev/null || python3 -m pip install -q nats-py # the nats listener's independent consumer
