#!/usr/bin/env bash
# Catch-up throughput of the hot-backup listener against the SSH channel
# itself, in the same run, over loopback:
#
#   1. `logdaemon run --once` ships a p4 journal of SIZE_MIB (default 256)
#      to a standby directory through a private sshd (fsync on, the default);
#   2. the same with `fsync = false`, to show what the fsyncs cost, and
#      with `verify = false`, to show what verifying the standby costs;
#   3. `ssh -c CIPHER host 'cat > file' < journal` (OpenSSH);
#   4. a plain libssh2 upload of the same file (`cat > file`, the example
#      `ssh-upload`, none of the listener's code): what libssh2 itself does
#      with the same cipher;
#   5. for reference, the daemon with the local `file` listener (its own
#      ceiling for this journal on this machine, no network).
#
# Every SSH client is forced to the same cipher, CIPHER (default
# chacha20-poly1305@openssh.com, the first choice of both OpenSSH and the
# listener; an AEAD, so no separate MAC); the listener through its `ciphers`
# key. The negotiated one is checked and printed. With a non-AEAD cipher
# (aes128-ctr) every client uses hmac-sha2-256, libssh2's first choice.
# Prints a table with MiB/s, the ratio to plain ssh (target >= 0.8) and the
# CPU each side used.
# Needs openssh-server and openssh-client; builds the release binaries.
#
# HOT_BACKUP_PLUGIN_DIR and SSH_UPLOAD run the listener and the plain upload
# from another build (e.g. one linked with
# listeners/hot-backup/patches/libssh2-encrypt-whole-packets.patch).
#
# Usage: [CIPHER=aes128-gcm@openssh.com] scripts/bench-hot-backup.sh [SIZE_MIB]
set -euo pipefail

SIZE_MIB=${1:-256}
CIPHER=${CIPHER:-chacha20-poly1305@openssh.com}
case $CIPHER in *gcm*|chacha*) MAC_OPT=() ;; *) MAC_OPT=(-m hmac-sha2-256) ;; esac
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# Where cargo puts the release build (CARGO_TARGET_DIR is honoured).
REL=${CARGO_TARGET_DIR:-$ROOT/target}/release
cd "$ROOT"
cargo build --release -q -p logdaemon -p logdaemon-listener-hot-backup -p logdaemon-listener-file
cargo build --release -q -p logdaemon-listener-hot-backup --example ssh-upload
BIN="$REL/logdaemon"

W=$(mktemp -d /tmp/bench-hot-backup.XXXXXX)
SSHD_PID=
cleanup() {
    if [ -n "$SSHD_PID" ]; then kill "$SSHD_PID" 2>/dev/null || true; fi
    rm -rf "$W"
}
trap cleanup EXIT

# --- a private sshd on a free loopback port --------------------------------
mkdir -p /run/sshd 2>/dev/null || true
ssh-keygen -q -t ed25519 -N '' -C bench-host -f "$W/host_key"
ssh-keygen -q -t ed25519 -N '' -C bench-user -f "$W/id_ed25519"
cp "$W/id_ed25519.pub" "$W/authorized_keys"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
USER_NAME=$(id -un)
cat > "$W/sshd_config" <<EOF
Port $PORT
ListenAddress 127.0.0.1
HostKey $W/host_key
AuthorizedKeysFile $W/authorized_keys
PidFile $W/sshd.pid
StrictModes no
UsePAM no
PermitRootLogin prohibit-password
PasswordAuthentication no
AllowUsers $USER_NAME
EOF
/usr/sbin/sshd -D -e -f "$W/sshd_config" 2>"$W/sshd.log" &
SSHD_PID=$!
for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then break; fi
    sleep 0.05
done
echo "[127.0.0.1]:$PORT $(cut -d' ' -f1,2 "$W/host_key.pub")" > "$W/known_hosts"

# --- a p4 journal of SIZE_MIB from the corpus' real records -----------------
mkdir -p "$W/server"
python3 - "$ROOT/tests/data/p4" "$W/server/journal" "$SIZE_MIB" <<'EOF'
import os, sys
src, dst, mib = sys.argv[1], sys.argv[2], int(sys.argv[3])
recs = []
for name in sorted(os.listdir(src)):
    if "jnl" not in name:
        continue
    data = open(os.path.join(src, name), "rb").read()
    start, ats = 0, 0
    for i, b in enumerate(data):
        if b == 0x40:
            ats += 1
        elif b == 0x0A and ats % 2 == 0:
            r = data[start:i + 1]
            if not r.startswith(b"@ex@"):
                recs.append(r)
            start, ats = i + 1, 0
chunk = bytearray()
t = 0
i = 0
while len(chunk) < 4 << 20:
    for _ in range(1 + t % 6):
        chunk += recs[i % len(recs)]
        i += 1
    chunk += b"@ex@ 4242 %d\n" % (1700000000 + t)
    t += 1
want = mib << 20
with open(dst, "wb") as f:
    n = 0
    while n < want:
        f.write(chunk)
        n += len(chunk)
EOF
BYTES=$(stat -c %s "$W/server/journal")

# --- measuring: wall clock, CPU of the sending side (the command and its
# threads) and CPU of the receiving side (sshd and everything it ran, as
# the children sshd reaped) ----------------------------------------------
CLK=$(getconf CLK_TCK)
server_ticks() { awk '{print $16 + $17}' "/proc/$SSHD_PID/stat"; }
settle() { # until sshd has reaped every session
    for _ in $(seq 250); do pgrep -P "$SSHD_PID" >/dev/null || return 0; sleep 0.02; done
}
measure() { # $1 = name, then the command; leaves "wall cpu_here cpu_sshd" in $W/$1.m
    local name=$1 s0 s1 wall u s
    shift
    settle
    s0=$(server_ticks)
    local TIMEFORMAT='%R %U %S'
    { time "$@"; } 2>"$W/$name.time"
    settle
    s1=$(server_ticks)
    read -r wall u s < <(tail -1 "$W/$name.time")
    echo "$wall $(echo "$u + $s" | bc -l) $(echo "($s1 - $s0) / $CLK" | bc -l)" >"$W/$name.m"
}

run_listener() { # $1 = label, $2 = extra config line
    local d="$W/$1"
    mkdir -p "$d/standby"
    cat > "$d/cfg.toml" <<EOF
state_dir = "state"
plugin_dir = "${HOT_BACKUP_PLUGIN_DIR:-$REL}"

[[journal]]
name = "p4"
path = "$W/server/journal"
format = "p4"
start = "beginning"

[[journal.listener]]
name = "standby"
plugin = "hot-backup"
[journal.listener.config]
host = "127.0.0.1"
port = $PORT
user = "$USER_NAME"
identity_file = "$W/id_ed25519"
known_hosts = "$W/known_hosts"
remote_dir = "$d/standby"
ciphers = "$CIPHER"
$2
EOF
    measure "$1" daemon_once "$d"
    cmp "$W/server/journal" "$d/standby/journal" >/dev/null || { echo "standby differs from the journal ($1)" >&2; tail "$d/daemon.log" >&2; exit 1; }
}
daemon_once() { (cd "$1" && "$BIN" run --config cfg.toml --once 2>"$1/daemon.log") || { echo "logdaemon failed in $1:" >&2; tail "$1/daemon.log" >&2; return 1; }; }

run_listener fsync ""
run_listener nofsync "fsync = false"
run_listener noverify "verify = false"
GOT=$(grep -o 'connected to [^)]*([^)]*)' "$W/fsync/daemon.log" | head -1 | sed 's/.*(\(.*\))/\1/')
[ "$GOT" = "$CIPHER" ] || { echo "the listener negotiated '$GOT', not $CIPHER" >&2; exit 1; }

plain_ssh() {
    ssh -c "$CIPHER" "${MAC_OPT[@]}" -o BatchMode=yes -o IdentitiesOnly=yes -o UserKnownHostsFile="$W/known_hosts" \
        -o StrictHostKeyChecking=yes -i "$W/id_ed25519" -p "$PORT" "$USER_NAME@127.0.0.1" \
        "cat > '$W/plain.copy'" < "$W/server/journal"
}
measure ssh plain_ssh
cmp "$W/server/journal" "$W/plain.copy" >/dev/null

plain_libssh2() {
    "${SSH_UPLOAD:-$REL/examples/ssh-upload}" 127.0.0.1 "$PORT" "$USER_NAME" "$W/id_ed25519" "$W/known_hosts" "$CIPHER" \
        "$W/libssh2.copy" < "$W/server/journal" 2>"$W/libssh2.log"
}
measure libssh2 plain_libssh2
cmp "$W/server/journal" "$W/libssh2.copy" >/dev/null
grep -qx "cipher $CIPHER" "$W/libssh2.log" || { echo "libssh2 negotiated $(cat "$W/libssh2.log"), not $CIPHER" >&2; exit 1; }

mkdir -p "$W/local"
cat > "$W/local/cfg.toml" <<CFG
state_dir = "state"
plugin_dir = "$REL"

[[journal]]
name = "p4"
path = "$W/server/journal"
format = "p4"
start = "beginning"

[[journal.listener]]
name = "copy"
plugin = "file"
[journal.listener.config]
path = "copy"
format = "raw"
CFG
measure local daemon_once "$W/local"
cmp "$W/server/journal" "$W/local/copy" >/dev/null

mibs() { echo "scale=1; $BYTES / 1048576 / $1" | bc -l; }
read -r T_SSH _ _ <"$W/ssh.m"
row() { # $1 = label, $2 = measurement; ratio = plain ssh time / this time
    local wall here there ratio=-
    read -r wall here there <"$W/$2.m"
    if [ "$2" = local ]; then there=-; else
        ratio=$(printf '%.2f' "$(echo "$T_SSH / $wall" | bc -l)")
        there=$(printf '%.2f' "$there")
    fi
    printf '%-50s %8.2f %8s %6s %9.2f %9s\n' "$1" "$wall" "$(mibs "$wall")" "$ratio" "$here" "$there"
}
printf '\nhot-backup catch-up, %s MiB p4 journal, loopback, cipher %s\n\n' "$((BYTES >> 20))" "$CIPHER"
printf '%-50s %8s %8s %6s %9s %9s\n' "method" "seconds" "MiB/s" "ratio" "CPU here" "CPU sshd"
row "ssh -c $CIPHER 'cat > file'" ssh
row "plain libssh2 upload 'cat > file'" libssh2
row "logdaemon run --once (fsync, default)" fsync
row "logdaemon run --once (fsync = false)" nofsync
row "logdaemon run --once (verify = false)" noverify
row "logdaemon run --once, local file listener" local
printf '\nCPU here: seconds of CPU of the sending process; CPU sshd: of sshd and\nwhat it ran (cat, the standby'"'"'s shell, dd). On a busy machine the\nseconds vary from run to run, the CPU much less.\n'
