//! The remote side, as POSIX `sh` scripts run over an SSH exec channel.
//!
//! Nothing is installed on the standby: every step is a short script built
//! here from names and numbers only, each word single-quoted. Journal data
//! never appears in a command line; it travels on the channel's stdin
//! (`dd`/`head -c N >> file` in the loop) or is read back from the remote file for `apply`.
//! Needs `sh`, `cat`, `wc`, `tail`, `head`, `mv`, `truncate` and `sync` (GNU
//! coreutils, BusyBox or BSD) on the standby, and uses GNU `dd` where found.

/// The marker holding the live file's sequence.
pub const MARKER: &str = ".logdaemon-standby";
/// The marker holding how far `apply` got: `SEQUENCE OFFSET`.
pub const APPLIED: &str = ".logdaemon-applied";

/// Which remote loop owns the standby: the process id of the newest
/// connection's loop. A loop left behind by a dropped connection finds it
/// changed and stops before touching the journal again.
pub const OWNER: &str = ".logdaemon-loop";

/// The output of the last `apply` run (kept out of the answer stream).
pub const APPLY_LOG: &str = ".logdaemon-apply.log";

/// Exit statuses the batch script uses to say what went wrong.
pub mod status {
    /// `remote_dir` does not exist or cannot be entered.
    pub const NO_DIR: i32 = 70;
    /// A rotated journal of that name already exists with other content.
    pub const ROTATE_CONFLICT: i32 = 65;
    /// The live file does not have the size it was expected to have.
    pub const SIZE_BEFORE: i32 = 66;
    /// After the append the live file is not as long as expected.
    pub const SIZE_AFTER: i32 = 67;
    /// The apply command failed.
    pub const APPLY: i32 = 68;
    /// A file operation (write, rename, fsync) failed: disk full, permissions.
    pub const IO: i32 = 71;
    /// A newer connection owns the standby (see [`super::OWNER`]).
    pub const SUPERSEDED: i32 = 75;
    /// The apply command ran past `command_timeout` and was killed.
    pub const APPLY_TIMEOUT: i32 = 72;
    /// An apply started by an earlier connection's loop is still running.
    pub const APPLY_BUSY: i32 = 73;
}

/// The process id of the loop whose `apply` runs, while it runs: a loop
/// of a later connection never starts a second `apply` beside it.
pub const APPLY_PID: &str = ".logdaemon-apply.pid";

/// Seconds between the TERM that ends an `apply` at `command_timeout` and
/// the KILL of its process group (`timeout -k`).
pub const APPLY_KILL_AFTER: u64 = 5;

/// What the remote loop runs for one request: `pre` (checks, rotation),
/// then the request's data appended to `target` (if any), then `post`
/// (apply), then `sync` (the fsync). All run in subshells with stdin from
/// `/dev/null`: only the loop itself reads the data, so journal data can
/// never be taken for a script.
///
/// `sync` runs in the background while the loop goes on with the next
/// request: the standby's disk writes back one batch while the next one
/// crosses the network, instead of the channel standing still for every
/// fsync (about a third of the catch-up time on a local disk). The answer
/// is printed only when the fsync is done, and answers stay in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Script {
    pub pre: String,
    pub post: String,
    /// Run after `post`, overlapping the next request; its answer waits for it.
    pub sync: String,
    /// Wait for the previous request's `sync` before `pre` (always so for a
    /// request without `sync` of its own).
    pub wait_first: bool,
    /// Path (absolute, or relative to the login directory) the data is appended to.
    pub target: String,
    /// Size of `target` before the append (`$b` in the scripts): the loop
    /// checks it is `expect + data` after, and cuts it back to `expect`
    /// otherwise.
    pub expect: u64,
    /// The request's `pre` or the `post` before it takes a while (a
    /// rotation, `apply`): its data is sent only once the loop says it is
    /// ready to take it (see [`SHELL_LOOP`]). Only for a request that waits
    /// for the previous `sync` first (or comes when none can be running).
    pub ready: bool,
}

impl Script {
    pub fn only(pre: String) -> Script {
        Script {
            pre,
            ..Default::default()
        }
    }

    /// The variables the loop evaluates before running the request: `p`,
    /// `q`, `z`, `y` and `f` (the three scripts, whether to wait for the
    /// previous `sync`, and the target), each single-quoted.
    pub fn defs(&self) -> String {
        let y = if self.wait_first { "1" } else { "" };
        format!(
            "p={}\nq={}\nz={}\ny={y}\nf={}\n",
            quote(&self.pre),
            quote(&self.post),
            quote(&self.sync),
            quote(&self.target)
        )
    }

    /// The request as the loop reads it: a line `A E R D`, then A bytes of
    /// [`Script::defs`] (one read for all saves the standby a process per
    /// variable), then the D bytes of data; E is [`Script::expect`], R is
    /// 1 when the data waits for the loop to say it is ready. With
    /// `same_defs` (this script's defs are those of the previous request
    /// on the channel) A is 0 and the loop keeps the previous ones: catching
    /// up, every request but the first is one line and its data, which the
    /// loop takes without starting a process before the append.
    pub fn frame(&self, data_len: u64, same_defs: bool, ready: bool) -> Vec<u8> {
        let defs = if same_defs {
            String::new()
        } else {
            self.defs()
        };
        let mut v = format!(
            "{} {} {} {data_len}\n",
            defs.len(),
            self.expect,
            u8::from(ready)
        )
        .into_bytes();
        v.extend_from_slice(defs.as_bytes());
        v
    }
}

/// The remote loop, sent as the command of the connection's one session.
/// For each request it runs `pre`; if that succeeded it appends exactly the
/// data bytes to the target (`ap`: GNU `dd`, which reads no further and
/// says how many bytes it moved), else it reads them into `/dev/null`;
/// an append that did not move exactly the announced bytes (the client
/// died while sending, a failed write) is cut back to the size it had, so
/// the standby never keeps half a batch. Then `post`; then it prints a
/// newline, the connection's token and the status. After a failure the
/// loop ends: requests sent behind the failed one (pipelined) were planned
/// on its success and must not run, and unread data is never read as a
/// request.
///
/// Asked to (`c` is 1), the loop prints a line of the token and `+` once
/// `pre` succeeded and it is about to read the data, and on a failed `pre`
/// it does not wait for data that will not come. The sender holds the data
/// back until then: data sent while the loop is busy elsewhere piles up in
/// sshd, and OpenSSH's sshd grows its buffer for it in 32 KiB steps, each a
/// copy of all of it: a first pile of 2 MiB (the channel's window) costs it
/// about 80 ms of CPU, here as long as the catch-up of 40 MiB.
///
/// After a successful append the loop knows the target's size (`k`): the
/// next append's `pre` checks the size with `wc` only when it does not
/// match what the request expects. Any request without data forgets it.
///
/// A request with a `sync` script has its answer printed by a background
/// job once `sync` is done, and its `pre`/`post` output is kept until then
/// (it is short text); the loop meanwhile takes the next request. `w`
/// waits for that job before anything else is printed, before a request
/// without `sync` runs (a read must see the data synced and its output
/// must not mix with an answer) or one that asks to (`y`: a rotation,
/// which renames the file the job syncs by name) and at the end; a failed
/// `sync` ends the loop there, with no answer for requests behind it.
///
/// GNU `dd` moves whole MiB blocks (checked once, on the first data of the
/// connection, by `pr`); without it `head -c` moves the data (8 KiB per
/// system call: here 0.3 s of CPU per 256 MiB against 0.1 s for `dd`) and
/// `wc` counts what arrived.
/// The command keeps starting with `exec sh -c 'while IFS=` for the
/// documented forced-command wrapper.
pub const SHELL_LOOP: &str = "while IFS=' ' read -r a b c d; do \
pr() { [ -n \"$_rd\" ] || { _rd=h; dd if=/dev/null of=/dev/null bs=1048576 iflag=fullblock,count_bytes count=0 status=none 2>/dev/null && _rd=d; }; }; \
rd() { pr; if [ \"$_rd\" = d ]; then dd bs=1048576 iflag=fullblock,count_bytes count=\"$1\" status=none; else head -c \"$1\"; fi; }; \
ap() { pr; m=x; r=; if [ \"$_rd\" = d ]; then r=$(LC_ALL=C dd bs=1048576 iflag=fullblock,count_bytes count=\"$d\" 2>&1 >> \"$f\"); h=$?; \
m=${r##*records out?}; m=${m%% *}; case $m in ''|*[!0-9]*) m=x ;; esac; else head -c \"$d\" >> \"$f\"; h=$?; fi; \
if [ \"$m\" = x ] && [ \"$h\" -eq 0 ]; then m=$(wc -c < \"$f\") && m=$((m - b)) || m=x; fi; }; \
w() { if [ -n \"$bg\" ]; then wait \"$bg\"; x=$?; bg=; [ \"$x\" -eq 0 ] || exit 1; fi; }; \
if [ \"$a\" -gt 0 ]; then p=; q=; z=; y=; f=; eval \"$(head -c \"$a\")\"; fi; o=; h=0; [ \"$d\" -gt 0 ] || k=; \
if [ -z \"$z\" ] || [ -n \"$y\" ]; then w; fi; \
if [ -z \"$p\" ]; then st=0; elif [ -z \"$z\" ]; then ( eval \"$p\" ) </dev/null 2>&1; st=$?; else o=$(eval \"$p\" </dev/null 2>&1); st=$?; fi; \
if [ \"$st\" -ne 0 ]; then k=; [ \"$c\" = 1 ] || rd \"$d\" >/dev/null; elif [ \"$d\" -gt 0 ]; then [ \"$c\" != 1 ] || { pr; printf '\\n%s+\\n' 'TOKEN'; }; ap; \
if [ \"$h\" -ne 0 ] || [ \"$m\" != \"$d\" ]; then k=; truncate -s \"$b\" \"$f\" 2>/dev/null; if [ \"$h\" -ne 0 ]; then st=71; else st=67; fi; \
o=\"$o$r
$f: $m of $d bytes appended, cut back to $b bytes\"; else k=\"$f $((b + d))\"; fi; fi; \
if [ \"$st\" -eq 0 ] && [ -n \"$q\" ]; then if [ -z \"$z\" ]; then ( eval \"$q\" ) </dev/null 2>&1; st=$?; else o=\"$o$(eval \"$q\" </dev/null 2>&1)\"; st=$?; fi; fi; \
w; if [ -n \"$z\" ] && [ \"$st\" -eq 0 ]; then \
( r=$(eval \"$z\" </dev/null 2>&1); s=$?; printf '%s\\n%s %s\\n' \"$o$r\" 'TOKEN' \"$s\"; [ \"$s\" -eq 0 ] ) & bg=$!; \
else printf '%s\\n%s %s\\n' \"$o\" 'TOKEN' \"$st\"; [ \"$st\" -eq 0 ] || exit 1; fi; done; w";

/// Quotes one word for a POSIX shell.
pub fn quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// Where things live on the standby.
#[derive(Clone, Debug)]
pub struct Layout {
    pub dir: String,
    /// Basename of the live journal.
    pub live: String,
}

impl Layout {
    /// The file holding sequence `seq`: the live name, or the rotated one.
    pub fn rotated(&self, seq: u64) -> String {
        format!("{}.{seq}", self.live)
    }

    fn cd(&self) -> String {
        format!(
            "cd -- {} 2>/dev/null || {{ echo 'cannot enter {}' >&2; exit {}; }}\n",
            quote(&self.dir),
            self.dir.replace('\'', ""),
            status::NO_DIR
        )
    }

    /// `cd`, then stop unless this connection's loop owns the standby
    /// (read by the shell itself: no process per batch).
    fn cd_owned(&self) -> String {
        self.cd()
            + &format!(
                "o=; {{ IFS= read -r o < ./{OWNER}; }} 2>/dev/null; [ \"$o\" = \"$$\" ] || {{ echo 'a newer connection owns the standby' >&2; exit {}; }}\n",
                status::SUPERSEDED
            )
    }

    /// Makes this connection's loop the owner of the standby, then prints
    /// `nodir` or `noclaim`, or `marker M`, `applied S O` and `size N NAME` lines
    /// for the live file, the rotated file of the marker's sequence and the
    /// rotated files of `seqs`.
    pub fn query(&self, seqs: &[u64]) -> Script {
        let mut s = format!(
            "cd -- {} 2>/dev/null || {{ echo nodir; exit 0; }}\n",
            quote(&self.dir)
        );
        // This connection's loop takes the standby over.
        s += &format!("{{ printf '%s\\n' $$ > ./{OWNER}.tmp && mv -f -- ./{OWNER}.tmp ./{OWNER}; }} 2>/dev/null || {{ echo noclaim; exit 0; }}\n");
        s += &format!("m=$(cat ./{MARKER} 2>/dev/null); echo \"marker $m\"\n");
        s += &format!("echo \"applied $(cat ./{APPLIED} 2>/dev/null)\"\n");
        let mut names = vec![quote(&format!("./{}", self.live))];
        names.extend(
            seqs.iter()
                .map(|q| quote(&format!("./{}", self.rotated(*q)))),
        );
        s += &format!(
            "case $m in ''|*[!0-9]*) r= ;; *) r={}.$m ;; esac\n",
            quote(&format!("./{}", self.live))
        );
        s += &format!("for f in {} $r; do if [ -f \"$f\" ]; then echo \"size $(wc -c < \"$f\") $f\"; fi; done\n", names.join(" "));
        Script::only(s)
    }

    /// Prints `cksum` of the first `len` bytes of `name` (`CRC LENGTH`).
    pub fn cksum(&self, name: &str, len: u64) -> Script {
        let f = quote(&format!("./{name}"));
        Script::only(format!(
            "{}[ -f {f} ] || exit 3\nhead -c {len} {f} | cksum\n",
            self.cd()
        ))
    }

    /// Prints `cksum` of each `len`-byte piece of `name`'s first `total`
    /// bytes, one line per piece (`CRC LENGTH`).
    pub fn cksum_pieces(&self, name: &str, total: u64, len: u64) -> Script {
        let f = quote(&format!("./{name}"));
        Script::only(format!(
            "{}[ -f {f} ] || exit 3\ni=0; while [ $i -lt {total} ]; do n={len}; [ $((i + n)) -le {total} ] || n=$(({total} - i)); tail -c +$((i + 1)) {f} | head -c $n | cksum; i=$((i + n)); done\n",
            self.cd()
        ))
    }

    /// Prints `len` bytes of `name` from `offset`.
    pub fn read(&self, name: &str, offset: u64, len: u64) -> Script {
        let f = quote(&format!("./{name}"));
        Script::only(format!(
            "{}[ -f {f} ] || exit 3\ntail -c +{} {f} 2>/dev/null | head -c {len}\n",
            self.cd(),
            offset + 1
        ))
    }
}

/// One step of the remote `apply` bookkeeping: feed `len` bytes (or the rest
/// of the file) of `file` from `from` to the apply command, then record
/// `marker` as applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApplyPiece {
    pub file: String,
    pub from: u64,
    pub len: Option<u64>,
    /// `false` for a rotated file that may be missing on the standby.
    pub must_exist: bool,
    pub marker: (u64, u64),
}

/// What one batch does on the standby, in this order.
#[derive(Clone, Debug, Default)]
pub struct Batch {
    /// Make `new` the live sequence; first rename a live file of sequence
    /// `old` to its numbered name (resumable: skipped if already renamed).
    pub rotate: Option<(Option<u64>, u64)>,
    /// Append stdin to the live file, which must be `expect` bytes long and
    /// then become `expect + len`.
    pub append: Option<(u64, u64)>,
    pub fsync: bool,
    pub apply: Vec<ApplyPiece>,
    /// Skip the size check before an append when the loop's own last
    /// append left the file at the expected size (`verify = false`).
    pub trust_cached_size: bool,
    /// Whole seconds an `apply` run may take (`command_timeout`): then
    /// `timeout(1)` ends it and its process group. 0: unbounded.
    pub apply_timeout_s: u64,
}

impl Batch {
    pub fn script(&self, l: &Layout, apply_cmd: Option<&[String]>) -> Script {
        let io = status::IO;
        let live = quote(&format!("./{}", l.live));
        let mut s = String::from("umask 077\n");
        s += &l.cd_owned();
        if let Some((old, new)) = self.rotate {
            if let Some(old) = old {
                let rotated = quote(&format!("./{}", l.rotated(old)));
                s += &format!(
                    "if [ -f {live} ]; then\n  if [ -e {rotated} ]; then echo \"cannot rotate: \"{rotated}\" already exists\" >&2; exit {}; fi\n  mv -f -- {live} {rotated} || exit {io}\nfi\n",
                    status::ROTATE_CONFLICT
                );
            }
            s += &format!("printf '%s\\n' {new} > ./{MARKER}.tmp && mv -f -- ./{MARKER}.tmp ./{MARKER} || exit {io}\n");
        }
        if self.rotate.is_some() || self.append.is_some() {
            s += &format!(": >> {live} || exit {io}\n");
        }
        // The directory's fsync (the rename, the marker, the new live
        // file) goes with the append's own when there is one.
        let sync_dir = "sync -- . 2>/dev/null || sync\n";
        let defer = self.append.is_some() && (self.apply.is_empty() || apply_cmd.is_none());
        if self.rotate.is_some() && self.fsync && !defer {
            s += sync_dir;
        }
        let mut post = String::new();
        let mut deferred = String::new();
        let mut target = String::new();
        let mut expect = 0;
        if let Some((before, _)) = self.append {
            expect = before;
            // `$b` is the size expected before (`expect`). The loop knows
            // the size after its own last append (`$k`, see [`SHELL_LOOP`]);
            // after a rotation the file is another one and is always checked.
            let known = if self.rotate.is_some() || !self.trust_cached_size {
                String::new()
            } else {
                "[ \"$k\" = \"$f $b\" ] || ".to_string()
            };
            s += &format!(
                "{known}{{ n=$(wc -c < {live}) || exit {io}; [ \"$n\" -eq \"$b\" ] || {{ echo \"{} is $n bytes, expected $b\" >&2; exit {}; }}; }}\n",
                l.live,
                status::SIZE_BEFORE
            );
            target = format!("{}/{}", l.dir, l.live);
            // The loop appends the data and checks its size after.
            if self.fsync {
                let fsync = format!("sync -- {live} 2>/dev/null || sync || exit {io}\n");
                if defer {
                    // Overlaps the next request (see [`Script`]).
                    deferred =
                        l.cd_owned() + if self.rotate.is_some() { sync_dir } else { "" } + &fsync;
                } else {
                    // `apply` reads the batch only once it is on disk.
                    post += &l.cd_owned();
                    post += &fsync;
                }
            }
        }
        if let (Some(cmd), false) = (apply_cmd, self.apply.is_empty()) {
            if post.is_empty() {
                post += "umask 077\n";
                post += &l.cd_owned();
            }
            let cmd: Vec<String> = cmd.iter().map(|w| quote(w)).collect();
            let mut cmd = cmd.join(" ");
            let t = self.apply_timeout_s;
            if t > 0 {
                // GNU, BusyBox and BSD `timeout`; GNU's signals the whole
                // process group, so children of `apply` end with it.
                cmd = format!("timeout -k {APPLY_KILL_AFTER} {t} {cmd}");
            }
            post += &format!(
                "ap=; {{ IFS= read -r ap < ./{APPLY_PID}; }} 2>/dev/null; if [ -n \"$ap\" ] && [ \"$ap\" != \"$$\" ] && kill -0 \"$ap\" 2>/dev/null; then echo \"an apply started by an earlier connection is still running on the standby (its loop is process $ap); it is not started twice\" >&2; exit {busy}; fi\nprintf '%s\\n' $$ > ./{APPLY_PID} || exit {io}\n",
                busy = status::APPLY_BUSY
            );
            for p in &self.apply {
                let f = quote(&format!("./{}", p.file));
                let head = p.len.map(|n| format!(" | head -c {n}")).unwrap_or_default();
                let what = format!("apply of {} from offset {}", p.file, p.from);
                let timed_out = if t > 0 {
                    format!("if [ $st -eq 124 ] || {{ [ $st -eq 137 ] && [ $(( $(date +%s) - t0 )) -ge {t} ]; }}; then echo \"{what} did not finish within command_timeout ({t}s) and was killed with its process group; the end of its output ({APPLY_LOG}):\" >&2; tail -c 4000 ./{APPLY_LOG} >&2; exit {}; fi; ", status::APPLY_TIMEOUT)
                } else {
                    String::new()
                };
                let run = format!(
                    "t0=$(date +%s); tail -c +{} {f}{head} | {cmd} > ./{APPLY_LOG} 2>&1 || {{ st=$?; {timed_out}echo \"{what} exited with status $st; the end of its output ({APPLY_LOG}):\" >&2; tail -c 4000 ./{APPLY_LOG} >&2; exit {}; }}",
                    p.from + 1,
                    status::APPLY
                );
                if p.must_exist {
                    post += &run;
                    post += "\n";
                } else {
                    post += &format!("if [ -f {f} ]; then {run}; fi\n");
                }
                post += &format!(
                    "printf '%s\\n' '{} {}' > ./{APPLIED}.tmp && mv -f -- ./{APPLIED}.tmp ./{APPLIED} || exit {io}\n",
                    p.marker.0, p.marker.1
                );
            }
            post += &format!("rm -f ./{APPLY_PID}\n");
        }
        // A rotation renames the live file, which an earlier request's
        // `sync` may still be about to open by name.
        Script {
            pre: s,
            post,
            sync: deferred,
            wait_first: self.rotate.is_some(),
            target,
            expect,
            ready: self.rotate.is_some() || (apply_cmd.is_some() && !self.apply.is_empty()),
        }
    }
}

/// The apply steps that take the standby from `from` (sequence, offset) to
/// `to`, where `live_seq` is the live file's sequence after this batch.
pub fn apply_pieces(
    l: &Layout,
    from: (u64, u64),
    to: (u64, u64),
    live_seq: u64,
) -> Vec<ApplyPiece> {
    let mut out = Vec::new();
    if from >= to {
        return out;
    }
    let name = |s: u64| {
        if s == live_seq {
            l.live.clone()
        } else {
            l.rotated(s)
        }
    };
    // Sequences are dense in practice; a wide jump only has its endpoints.
    let mut seqs: Vec<u64> = if to.0 - from.0 <= 1000 {
        (from.0..=to.0).collect()
    } else {
        vec![from.0, to.0]
    };
    seqs.dedup();
    for s in seqs {
        let start = if s == from.0 { from.1 } else { 0 };
        if s == to.0 {
            if to.1 > start {
                out.push(ApplyPiece {
                    file: name(s),
                    from: start,
                    len: Some(to.1 - start),
                    must_exist: true,
                    marker: to,
                });
            }
        } else {
            out.push(ApplyPiece {
                file: name(s),
                from: start,
                len: None,
                must_exist: false,
                marker: (s + 1, 0),
            });
        }
    }
    out
}

#[cfg(test)]
mod script_tests;
#[cfg(test)]
mod tests;
