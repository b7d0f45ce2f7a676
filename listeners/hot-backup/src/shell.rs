//! The remote side, as POSIX `sh` scripts run over an SSH exec channel.
//!
//! Nothing is installed on the standby: every step is a short script built
//! here from names and numbers only, each word single-quoted. Journal data
//! never appears in a command line; it travels on the channel's stdin
//! (`dd`/`head -c N >> file` in the loop) or is read back from the remote file for `apply`.
//! Needs `sh`, `cat`, `wc`, `tail`, `head`, `mv` and `sync` (GNU coreutils,
//! BusyBox or BSD) on the standby.

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
}

/// What the remote loop runs for one request: `pre` (checks, rotation),
/// then the request's data appended to `target` (if any), then `post`
/// (size check, apply), then `sync` (the fsync). All run in subshells with
/// stdin from `/dev/null`: only the loop itself reads the data, so journal
/// data can never be taken for a script.
///
/// `sync` runs in the background while the loop goes on with the next
/// request: the standby's disk writes back one batch while the next one
/// crosses the network, instead of the channel standing still for every
/// fsync (about a third of the catch-up time on a local disk). The answer
/// is printed only when the fsync is done, and answers stay in order.
#[derive(Clone, Debug, Default)]
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
}

impl Script {
    pub fn only(pre: String) -> Script {
        Script { pre, ..Default::default() }
    }

    /// The request as the loop reads it: a line `A 0 0 D`, then A bytes
    /// that set `p`, `q`, `z`, `b` and `f` (the three scripts, whether to
    /// wait for the previous `sync`, and the target, each single-quoted), then the D bytes of data. One read for all
    /// saves the standby processes per request.
    pub fn frame(&self, data_len: u64) -> Vec<u8> {
        let b = if self.wait_first { "1" } else { "" };
        let defs = format!("p={}\nq={}\nz={}\nb={b}\nf={}\n", quote(&self.pre), quote(&self.post), quote(&self.sync), quote(&self.target));
        let mut v = format!("{} 0 0 {data_len}\n", defs.len()).into_bytes();
        v.extend_from_slice(defs.as_bytes());
        v
    }
}

/// The remote loop, sent as the command of the connection's one session.
/// For each request it runs `pre`; if that succeeded it appends exactly the
/// data bytes to the target with `rd` (which reads no further), else
/// it reads them into `/dev/null`; then `post`; then it prints a newline,
/// the connection's token and the status. After a failure the loop ends:
/// requests sent behind the failed one (pipelined) were planned on its
/// success and must not run, and unread data is never read as a request.
///
/// A request with a `sync` script has its answer printed by a background
/// job once `sync` is done, and its `pre`/`post` output is kept until then
/// (it is short text); the loop meanwhile takes the next request. `w`
/// waits for that job before anything else is printed, before a request
/// without `sync` runs (a read must see the data synced and its output
/// must not mix with an answer) or one that asks to (`b`: a rotation,
/// which renames the file the job syncs by name) and at the end; a failed `sync` ends the
/// loop there, with no answer for requests behind it.
///
/// `rd N` is GNU `dd` moving whole MiB blocks where it exists (checked
/// once, on the first data of the connection), else `head -c`, which
/// moves data 8 KiB per system call (here 0.3 s of CPU per 256 MiB
/// against 0.1 s for `dd`).
/// The command keeps starting with `exec sh -c 'while IFS=` for the
/// documented forced-command wrapper.
pub const SHELL_LOOP: &str = "while IFS=' ' read -r a b c d; do \
rd() { [ -n \"$_rd\" ] || { _rd=h; dd if=/dev/null of=/dev/null bs=1048576 iflag=fullblock,count_bytes count=0 status=none 2>/dev/null && _rd=d; }; \
if [ \"$_rd\" = d ]; then dd bs=1048576 iflag=fullblock,count_bytes count=\"$1\" status=none; else head -c \"$1\"; fi; }; \
w() { if [ -n \"$bg\" ]; then wait \"$bg\"; x=$?; bg=; [ \"$x\" -eq 0 ] || exit 1; fi; }; \
p=; q=; z=; b=; f=; o=; eval \"$(head -c \"$a\")\"; h=0; \
if [ -z \"$z\" ] || [ -n \"$b\" ]; then w; fi; \
if [ -z \"$z\" ]; then ( eval \"$p\" ) </dev/null 2>&1; st=$?; else o=$(eval \"$p\" </dev/null 2>&1); st=$?; fi; \
if [ \"$st\" -ne 0 ]; then rd \"$d\" >/dev/null; elif [ \"$d\" -gt 0 ]; then rd \"$d\" >> \"$f\"; h=$?; fi; \
if [ \"$st\" -eq 0 ] && [ -n \"$q\" ]; then if [ -z \"$z\" ]; then ( eval \"$q\" ) </dev/null 2>&1; st=$?; else o=\"$o$(eval \"$q\" </dev/null 2>&1)\"; st=$?; fi; fi; \
[ \"$h\" -eq 0 ] || [ \"$st\" -ne 0 ] || st=71; \
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
        format!("cd -- {} 2>/dev/null || {{ echo 'cannot enter {}' >&2; exit {}; }}\n", quote(&self.dir), self.dir.replace('\'', ""), status::NO_DIR)
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
        let mut s = format!("cd -- {} 2>/dev/null || {{ echo nodir; exit 0; }}\n", quote(&self.dir));
        // This connection's loop takes the standby over.
        s += &format!("{{ printf '%s\\n' $$ > ./{OWNER}.tmp && mv -f -- ./{OWNER}.tmp ./{OWNER}; }} 2>/dev/null || {{ echo noclaim; exit 0; }}\n");
        s += &format!("m=$(cat ./{MARKER} 2>/dev/null); echo \"marker $m\"\n");
        s += &format!("echo \"applied $(cat ./{APPLIED} 2>/dev/null)\"\n");
        let mut names = vec![quote(&format!("./{}", self.live))];
        names.extend(seqs.iter().map(|q| quote(&format!("./{}", self.rotated(*q)))));
        s += &format!("case $m in ''|*[!0-9]*) r= ;; *) r={}.$m ;; esac\n", quote(&format!("./{}", self.live)));
        s += &format!("for f in {} $r; do if [ -f \"$f\" ]; then echo \"size $(wc -c < \"$f\") $f\"; fi; done\n", names.join(" "));
        Script::only(s)
    }

    /// Prints `len` bytes of `name` from `offset`.
    pub fn read(&self, name: &str, offset: u64, len: u64) -> Script {
        let f = quote(&format!("./{name}"));
        Script::only(format!("{}[ -f {f} ] || exit 3\ntail -c +{} {f} 2>/dev/null | head -c {len}\n", self.cd(), offset + 1))
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
        if let Some((expect, len)) = self.append {
            let end = expect + len;
            s += &format!(
                "n=$(wc -c < {live}) || exit {io}\n[ \"$n\" -eq {expect} ] || {{ echo \"{} is $n bytes, expected {expect}\" >&2; exit {}; }}\n",
                l.live,
                status::SIZE_BEFORE
            );
            target = format!("{}/{}", l.dir, l.live);
            // The loop appended the data. A short batch (the client died
            // while sending) or a failed write is cut back to the size
            // checked before, so the standby never keeps half a batch.
            post += &l.cd_owned();
            post += &format!(
                "n=$(wc -c < {live}) || exit {io}\nif [ \"$n\" -ne {end} ]; then truncate -s {expect} {live} 2>/dev/null; echo \"{} is $n bytes after the append, expected {end}; cut back to {expect}\" >&2; exit {}; fi\n",
                l.live,
                status::SIZE_AFTER
            );
            if self.fsync {
                let fsync = format!("sync -- {live} 2>/dev/null || sync || exit {io}\n");
                if defer {
                    // Overlaps the next request (see [`Script`]).
                    deferred = l.cd_owned() + if self.rotate.is_some() { sync_dir } else { "" } + &fsync;
                } else {
                    // `apply` reads the batch only once it is on disk.
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
            let cmd = cmd.join(" ");
            for p in &self.apply {
                let f = quote(&format!("./{}", p.file));
                let head = p.len.map(|n| format!(" | head -c {n}")).unwrap_or_default();
                let run = format!(
                    "tail -c +{} {f}{head} | {cmd} > ./{APPLY_LOG} 2>&1 || {{ st=$?; echo \"apply of {} from offset {} exited with status $st; the end of its output ({APPLY_LOG}):\" >&2; tail -c 4000 ./{APPLY_LOG} >&2; exit {}; }}",
                    p.from + 1,
                    p.file,
                    p.from,
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
        }
        // A rotation renames the live file, which an earlier request's
        // `sync` may still be about to open by name.
        Script { pre: s, post, sync: deferred, wait_first: self.rotate.is_some(), target }
    }
}

/// The apply steps that take the standby from `from` (sequence, offset) to
/// `to`, where `live_seq` is the live file's sequence after this batch.
pub fn apply_pieces(l: &Layout, from: (u64, u64), to: (u64, u64), live_seq: u64) -> Vec<ApplyPiece> {
    let mut out = Vec::new();
    if from >= to {
        return out;
    }
    let name = |s: u64| if s == live_seq { l.live.clone() } else { l.rotated(s) };
    // Sequences are dense in practice; a wide jump only has its endpoints.
    let mut seqs: Vec<u64> = if to.0 - from.0 <= 1000 { (from.0..=to.0).collect() } else { vec![from.0, to.0] };
    seqs.dedup();
    for s in seqs {
        let start = if s == from.0 { from.1 } else { 0 };
        if s == to.0 {
            if to.1 > start {
                out.push(ApplyPiece { file: name(s), from: start, len: Some(to.1 - start), must_exist: true, marker: to });
            }
        } else {
            out.push(ApplyPiece { file: name(s), from: start, len: None, must_exist: false, marker: (s + 1, 0) });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    /// Runs requests through [`SHELL_LOOP`] under a local `sh`, as the
    /// standby does; returns each request's status and output.
    fn run_loop(reqs: &[(&Script, &[u8])]) -> Vec<(i32, String)> {
        run_loop_path(reqs, None)
    }

    /// [`run_loop`] with `dir` first in `PATH`.
    fn run_loop_path(reqs: &[(&Script, &[u8])], dir: Option<&std::path::Path>) -> Vec<(i32, String)> {
        use std::io::Write;
        let mut input = Vec::new();
        for (s, data) in reqs {
            input.extend_from_slice(&s.frame(data.len() as u64));
            input.extend_from_slice(data);
        }
        let mut c = Command::new("sh");
        c.arg("-c").arg(SHELL_LOOP.replace("TOKEN", "@@T")).stdin(Stdio::piped()).stdout(Stdio::piped());
        if let Some(d) = dir {
            c.env("PATH", format!("{}:{}", d.display(), std::env::var("PATH").unwrap_or_default()));
        }
        let mut c = c.spawn().unwrap();
        c.stdin.take().unwrap().write_all(&input).unwrap();
        let o = c.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        let mut out = Vec::new();
        let mut rest = text.as_str();
        while let Some(i) = rest.find("\n@@T ") {
            let (body, tail) = rest.split_at(i);
            let tail = &tail[5..];
            let nl = tail.find('\n').unwrap();
            out.push((tail[..nl].parse().unwrap(), body.to_string()));
            rest = &tail[nl + 1..];
        }
        out
    }

    /// Runs `script` in a fresh loop that first claims `l`'s standby, as
    /// every connection does.
    fn sh_owned(l: &Layout, script: &Script, stdin: &[u8]) -> (i32, String) {
        run_loop(&[(&l.query(&[]), b""), (script, stdin)]).pop().expect("two answers")
    }

    fn sh(script: &Script, stdin: &[u8]) -> (i32, String) {
        run_loop(&[(script, stdin)]).pop().expect("one answer")
    }

    fn sh_text(script: &str) -> (i32, String) {
        let o = Command::new("sh").arg("-c").arg(script).output().unwrap();
        (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stdout).into_owned())
    }

    #[test]
    fn the_loop_never_runs_data_as_a_request_and_ends_on_a_failed_write() {
        let dir = tempfile::tempdir().unwrap();
        let canary = dir.path().join("canary");
        let evil = format!("0 0 0 0\ntouch '{}'\n", canary.display());
        let refused = Script::only("exit 3".into());
        let echo = Script::only("printf hi".into());
        let to_file = Script { pre: String::new(), post: "echo posted".into(), target: dir.path().join("f").display().to_string(), ..Default::default() };
        let to_nowhere = Script { pre: String::new(), post: String::new(), target: "/nonexistent/dir/f".into(), ..Default::default() };
        let answers = run_loop(&[(&echo, b""), (&to_file, evil.as_bytes()), (&to_nowhere, evil.as_bytes()), (&echo, b"")]);
        assert_eq!(answers.iter().map(|a| a.0).collect::<Vec<_>>(), [0, 0, status::IO], "{answers:?}");
        assert_eq!(answers[0].1, "hi");
        assert_eq!(answers[1].1, "posted\n");
        assert_eq!(std::fs::read(dir.path().join("f")).unwrap(), evil.as_bytes());
        // A failed request ends the loop: what was sent behind it never runs.
        let answers = run_loop(&[(&refused, evil.as_bytes()), (&echo, b"")]);
        assert_eq!(answers.iter().map(|a| a.0).collect::<Vec<_>>(), [3], "{answers:?}");
        assert!(!canary.exists(), "data was executed");
    }

    /// Megabytes are appended exactly, with GNU `dd` and (when `dd` is
    /// missing or not GNU's) with `head -c`; the next request follows intact.
    #[test]
    fn the_loop_appends_exactly_with_and_without_gnu_dd() {
        use std::os::unix::fs::PermissionsExt;
        for gnu_dd in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let bin = dir.path().join("bin");
            std::fs::create_dir(&bin).unwrap();
            let calls = dir.path().join("dd-calls");
            if !gnu_dd {
                std::fs::write(bin.join("dd"), format!("#!/bin/sh\necho x >> '{}'\nexit 1\n", calls.display())).unwrap();
                std::fs::set_permissions(bin.join("dd"), std::fs::Permissions::from_mode(0o755)).unwrap();
            }
            let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
            let to_file = Script { pre: String::new(), post: String::new(), target: dir.path().join("f").display().to_string(), ..Default::default() };
            let echo = Script::only("printf hi".into());
            let answers = run_loop_path(&[(&to_file, &data), (&to_file, b"tail\n"), (&echo, b"")], Some(&bin));
            assert_eq!(answers.iter().map(|a| a.0).collect::<Vec<_>>(), [0, 0, 0], "gnu dd {gnu_dd}: {answers:?}");
            assert_eq!(answers[2].1, "hi");
            let mut want = data.clone();
            want.extend_from_slice(b"tail\n");
            assert!(std::fs::read(dir.path().join("f")).unwrap() == want, "gnu dd {gnu_dd}: the appended bytes differ");
            if !gnu_dd {
                assert_eq!(std::fs::read_to_string(&calls).unwrap(), "x\n", "dd is probed once, then never used");
            }
        }
    }

    /// The fsync of one request overlaps the next request's data, answers
    /// stay in order and a failed fsync ends the loop. The `sync` put
    /// first in `PATH` only succeeds once the next request's bytes are in
    /// the file, which can only happen if the loop went on without it.
    #[test]
    fn the_fsync_overlaps_the_next_request_and_its_failure_ends_the_loop() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let (bin, f, calls) = (dir.path().join("bin"), dir.path().join("f"), dir.path().join("sync-calls"));
        std::fs::create_dir(&bin).unwrap();
        let fake = format!(
            "#!/bin/sh\necho x >> '{calls}'\n[ \"$(wc -l < '{calls}')\" -eq 1 ] || exit 0\n\
             i=0; while [ \"$(wc -c < '{f}')\" -lt 10 ]; do i=$((i+1)); [ $i -lt 2000 ] || {{ echo 'the next request never came' >&2; exit 1; }}; sleep 0.01; done\n",
            calls = calls.display(),
            f = f.display()
        );
        std::fs::write(bin.join("sync"), fake).unwrap();
        std::fs::set_permissions(bin.join("sync"), std::fs::Permissions::from_mode(0o755)).unwrap();
        let append = Script { post: "echo posted".into(), sync: "sync || exit 71".into(), target: f.display().to_string(), ..Default::default() };
        let echo = Script::only("printf hi".into());
        let answers = run_loop_path(&[(&append, b"first"), (&append, b"again"), (&echo, b"")], Some(&bin));
        assert_eq!(answers.iter().map(|a| a.0).collect::<Vec<_>>(), [0, 0, 0], "{answers:?}");
        assert_eq!(answers.iter().map(|a| a.1.as_str()).collect::<Vec<_>>(), ["posted", "posted", "hi"]);
        assert_eq!(std::fs::read(&f).unwrap(), b"firstagain");
        assert_eq!(std::fs::read_to_string(&calls).unwrap(), "x\nx\n", "one fsync per request");

        // The first fsync fails: its answer says so and nothing behind it is answered.
        std::fs::write(bin.join("sync"), "#!/bin/sh\necho 'disk gone' >&2\nexit 1\n").unwrap();
        std::fs::remove_file(&f).unwrap();
        let answers = run_loop_path(&[(&append, b"first"), (&append, b"again"), (&echo, b"")], Some(&bin));
        assert_eq!(answers.len(), 1, "{answers:?}");
        // (Kept output loses its trailing newlines, as `$(...)` does.)
        assert_eq!((answers[0].0, answers[0].1.as_str()), (71, "posteddisk gone"));
    }

    /// A request that asks to (a rotation) runs only once the previous
    /// request's fsync is done, though it has a deferred fsync of its own.
    #[test]
    fn a_request_that_waits_first_runs_after_the_previous_fsync() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let (bin, f, done) = (dir.path().join("bin"), dir.path().join("f"), dir.path().join("synced"));
        std::fs::create_dir(&bin).unwrap();
        // Slow enough that a request not waiting for it finds no mark.
        std::fs::write(bin.join("sync"), format!("#!/bin/sh\nsleep 0.3\necho x >> '{}'\n", done.display())).unwrap();
        std::fs::set_permissions(bin.join("sync"), std::fs::Permissions::from_mode(0o755)).unwrap();
        let append = Script { sync: "sync || exit 71".into(), target: f.display().to_string(), ..Default::default() };
        let check = format!("[ -f '{}' ] || {{ echo 'ran before the fsync'; exit 9; }}", done.display());
        let waits = Script { pre: check.clone(), wait_first: true, ..append.clone() };
        let answers = run_loop_path(&[(&append, b"one"), (&waits, b"two")], Some(&bin));
        assert_eq!(answers.iter().map(|a| a.0).collect::<Vec<_>>(), [0, 0], "{answers:?}");
        assert_eq!(std::fs::read_to_string(&done).unwrap(), "x\nx\n");
        // Without `wait_first` the same request does not wait (the check above can fail).
        std::fs::remove_file(&done).unwrap();
        let eager = Script { pre: check, ..append.clone() };
        let answers = run_loop_path(&[(&append, b"one"), (&eager, b"two")], Some(&bin));
        assert_eq!(answers.iter().map(|a| a.0).collect::<Vec<_>>(), [0, 9], "{answers:?}");
    }

    #[test]
    fn quoting_survives_the_shell() {
        for w in ["plain", "it's", "a b", "$(rm -rf /)", "'", "\"x\"", "back\\slash", "new\nline"] {
            let (_, out) = sh_text(&format!("printf '%s' {}", quote(w)));
            assert_eq!(out, w);
        }
    }

    #[test]
    fn apply_pieces_cross_rotations_and_mark_each_step() {
        let l = Layout { dir: "/d".into(), live: "journal".into() };
        assert!(apply_pieces(&l, (3, 10), (3, 10), 3).is_empty());
        assert_eq!(
            apply_pieces(&l, (3, 10), (3, 25), 3),
            vec![ApplyPiece { file: "journal".into(), from: 10, len: Some(15), must_exist: true, marker: (3, 25) }]
        );
        let p = apply_pieces(&l, (3, 10), (5, 7), 5);
        assert_eq!(p.len(), 3);
        assert_eq!((p[0].file.as_str(), p[0].from, p[0].len, p[0].marker), ("journal.3", 10, None, (4, 0)));
        assert_eq!((p[1].file.as_str(), p[1].from, p[1].must_exist), ("journal.4", 0, false));
        assert_eq!((p[2].file.as_str(), p[2].len, p[2].marker), ("journal", Some(7), (5, 7)));
    }

    /// The scripts run by a real local `sh` in a temp dir: the same
    /// commands the standby runs, without the network.
    #[test]
    fn batch_script_rotates_resumably_appends_checks_sizes_and_applies() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let l = Layout { dir: d.to_str().unwrap().into(), live: "journal".into() };
        let sink = d.join("applied-out");
        let apply = vec!["sh".to_string(), "-c".to_string(), format!("cat >> {}", quote(sink.to_str().unwrap()))];

        let b = Batch { rotate: Some((None, 7)), append: Some((0, 6)), fsync: true, apply: apply_pieces(&l, (7, 0), (7, 6), 7) };
        let (st, out) = sh_owned(&l, &b.script(&l, Some(&apply)), b"hello\n");
        assert_eq!(st, 0, "{out}");
        assert_eq!(std::fs::read(d.join("journal")).unwrap(), b"hello\n");
        assert_eq!(std::fs::read_to_string(d.join(MARKER)).unwrap(), "7\n");
        assert_eq!(std::fs::read_to_string(d.join(APPLIED)).unwrap(), "7 6\n");

        // A stale expectation is refused without touching the file.
        let b = Batch { append: Some((3, 2)), fsync: false, ..Default::default() };
        let (st, out) = sh_owned(&l, &b.script(&l, None), b"xx");
        assert_eq!(st, status::SIZE_BEFORE, "{out}");
        assert!(out.contains("journal is 6 bytes, expected 3"), "{out}");

        // Rotation, run twice (a crash after the rename): the second run
        // finds the live file gone and only finishes the marker.
        let b = Batch { rotate: Some((Some(7), 8)), ..Default::default() };
        assert_eq!(sh_owned(&l, &b.script(&l, None), b"").0, 0);
        std::fs::remove_file(d.join("journal")).unwrap();
        std::fs::write(d.join(MARKER), "7\n").unwrap();
        assert_eq!(sh_owned(&l, &b.script(&l, None), b"").0, 0);
        assert_eq!(std::fs::read(d.join("journal.7")).unwrap(), b"hello\n");
        assert_eq!(std::fs::read(d.join("journal")).unwrap(), b"");
        assert_eq!(std::fs::read_to_string(d.join(MARKER)).unwrap(), "8\n");

        // A rotated name that already exists is never overwritten.
        std::fs::write(d.join("journal"), b"new").unwrap();
        std::fs::write(d.join(MARKER), "7\n").unwrap();
        let (st, out) = sh_owned(&l, &b.script(&l, None), b"");
        assert_eq!(st, status::ROTATE_CONFLICT, "{out}");
        assert_eq!(std::fs::read(d.join("journal.7")).unwrap(), b"hello\n");

        // The query reports marker, applied and sizes.
        let (st, out) = sh(&l.query(&[7]), b"");
        assert_eq!(st, 0);
        assert!(out.contains("marker 7\n") && out.contains("applied 7 6\n"), "{out}");
        assert!(out.contains("size 3 ./journal\n") && out.contains("size 6 ./journal.7\n"), "{out}");
        let (st, out) = sh(&l.read("journal.7", 1, 3), b"");
        assert_eq!((st, out.as_str()), (0, "ell"));
        let gone = Layout { dir: d.join("missing").to_str().unwrap().into(), live: "journal".into() };
        assert_eq!(sh(&gone.query(&[]), b"").1, "nodir\n");

        // A loop whose connection was superseded touches nothing.
        let b = Batch { append: Some((3, 2)), fsync: false, ..Default::default() };
        let (st, out) = sh(&b.script(&l, None), b"xx");
        assert_eq!(st, status::SUPERSEDED, "{out}");
        assert_eq!(std::fs::read(d.join("journal")).unwrap(), b"new");
    }
}
