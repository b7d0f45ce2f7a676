#!/usr/bin/env python3
"""Builds the working seed corpora under fuzz/corpus/<target>/ from the
repository's real journals and examples (see README.md). Deterministic."""
import os, random, struct, glob

ROOT = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(ROOT)
rng = random.Random(1)

def put(target, name, data):
    d = os.path.join(ROOT, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)

def frame_header():
    # flags (live, scale, repeat), then up to 15 chunk sizes
    flags = rng.randrange(256) & 0b0000_0111 if rng.random() < 0.8 else rng.randrange(256)
    sizes = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 6)))
    return bytes([flags, len(sizes)]) + sizes

journals = sorted(glob.glob(os.path.join(REPO, "tests/data/p4/*jnl*")) + glob.glob(os.path.join(REPO, "tests/data/p4/*ckp*")))
journals += [os.path.join(REPO, "examples/p4/p4root/journal"), os.path.join(REPO, "examples/p4/p4root/journal.1")]
for path in journals:
    data = open(path, "rb").read()[:6000]
    put("p4_framer", os.path.basename(path), frame_header() + data)

logs = [
    b"2024-01-01 12:00:00 INFO start\n2024-01-01 12:00:01 ERROR boom\n  at a.b(c.java:1)\n  at d.e(f.java:2)\n2024-01-01 12:00:02 INFO ok\r\n",
    b"boot noise\nmore\n2024-05-06 x\n\tcontinued\n[end]\nline ]\n2024-05-07 cut",
    b"plain\nlines\n\n\r\nno newline at end",
]
for i, log in enumerate(logs):
    for pick in range(4):
        put("lines_framer", f"log{i}_{pick}", bytes([pick]) + frame_header() + log)
for path in journals[:8]:
    put("lines_framer", "p4_" + os.path.basename(path), bytes([rng.randrange(4)]) + frame_header() + open(path, "rb").read()[:3000])

ckp = open(os.path.join(REPO, "examples/p4/state/checkpoint.toml"), "rb").read()
put("checkpoint_load", "example", ckp)
put("checkpoint_load", "finished", b"""version = 1

[journal.p4]
sequence = 12
offset = 4096
line = 57

[journal.p4.identity]
path = "/p4/root/journal"
dev = "18446744073709551615"
inode = 131075
head_len = 4096
head_hash = "xxh3:0123456789abcdef"
tail_len = 4096
tail_hash = "xxh3:fedcba9876543210"

[[journal.p4.finished]]
sequence = 11
size = 1234
head_len = 1234
head_hash = "xxh3:0123456789abcdef"
tail_len = 1234
tail_hash = "xxh3:0123456789abcdef"
path = "/p4/root/journal.11"

[journal."odd name \\u00e9".listener.copy]
sequence = 12
offset = 10
line = 1
""")

cfg = open(os.path.join(REPO, "examples/p4/logdaemon.toml"), "rb").read()
put("config_load", "example", cfg)
put("config_load", "full", b"""state_dir = "state"
plugin_dir = "plugins"
[[journal]]
name = "p4"
path = "p4root/journal"
format = "p4"
quiet_after = "2s"
start = "end"
on_gap = "report"
rotated = ["{name}.{N}{ext}"]
reconcile_every = "1s"
batch_bytes = 4194304
[[journal.listener]]
name = "copy"
plugin = "file"
on_failure = "disable"
retry_max = "60s"
[journal.listener.config]
path = "out/journal.raw"
format = "raw"
fsync = true
when = 1979-05-27T07:32:00Z
nested = { a = [1, 2.5, "x"], b = { c = true } }
[[journal.listener.config.list]]
k = 1
[[journal]]
name = "app"
path = "/var/log/app.log"
format = "lines"
record_start = '^\\d{4}-'
[[journal.listener]]
name = "x"
plugin = "./libx.so"
""")

def desc(flags, extra, missing, wants, labels, pool):
    out = bytes([flags]) + extra + bytes([missing]) + struct.pack("<I", wants)
    for mode, a, b in labels:
        out += bytes([mode]) + struct.pack("<HH", a, b)
    return out + pool

pool = b"example0.1.0 (rustc 1.95)\xff\xfe"
put("plugin_descriptor", "good", desc(0, b"", 0, 1, [(0, 0, 7), (0, 7, 5), (0, 12, 13)], pool))
put("plugin_descriptor", "newer_layout", desc(2, struct.pack("<I", 4096), 0, 0, [(0, 0, 7), (3, 0, 0), (3, 0, 0)], pool))
put("plugin_descriptor", "bad_utf8", desc(0, b"", 0, 1, [(0, 0, 7), (0, 20, 7), (0, 0, 0)], pool))
put("plugin_descriptor", "overlong", desc(0, b"", 0, 1, [(2, 3, 5), (0, 7, 5), (0, 12, 13)], pool))
put("plugin_descriptor", "null", desc(0, b"", 0x40, 1, [(0, 0, 7), (1, 0, 3), (1, 0, 0)], pool))
put("plugin_descriptor", "old", desc(3, struct.pack("<II", 0, 8), 0, 1, [], b""))
