//! Batches that continue the standby's live file end to end, sent as one
//! request.
//!
//! Each request costs the standby a few processes (size checks before and
//! after, `dd`, `sync`): about 5 ms of CPU, a quarter of what the standby
//! spends per 8 MiB batch beside sshd itself. While catching up, batches
//! queue up behind each other and simply continue the live file, so the
//! sending thread hands over what is queued together and it travels as
//! one append. Anything else (a rotation, bytes the standby already has,
//! a hole, `apply`) takes the one-run path in the parent module.

use std::io::Write;

use super::{Link, Pending, Standby};
use crate::error::{transient, Error, Result};
use crate::hold::Run;
use crate::shell::Batch;
use logdaemon_sdk::Position;

impl Standby {
    /// Ships `runs` in order, each with the tag of its batch; consecutive
    /// runs that continue the standby's live file exactly go as one request.
    /// Returns the tags confirmed meanwhile; on failure, the error and the
    /// position before which everything was confirmed.
    pub fn ship_all(
        &mut self,
        runs: &[(Run<'_>, u64)],
    ) -> std::result::Result<Vec<u64>, (Error, Position)> {
        let mut confirmed = Vec::new();
        let mut i = 0;
        while i < runs.len() {
            let at = self.oldest_pending().unwrap_or(runs[i].0.start);
            let n = self.joinable(&runs[i..]).map_err(|e| (e, at))?;
            let r = if n > 1 {
                self.ship_joined(&runs[i..i + n])
            } else {
                self.ship(&runs[i].0, runs[i].1)
            };
            confirmed.extend(r.map_err(|e| (e, at))?);
            i += n.max(1);
        }
        Ok(confirmed)
    }

    /// How many of `runs` can go as one request (0 or 1: not joinable).
    fn joinable(&mut self, runs: &[(Run<'_>, u64)]) -> Result<usize> {
        if runs.len() < 2 || self.cfg.apply.is_some() {
            return Ok(runs.len().min(1));
        }
        self.connect()?;
        let view = &self.link.as_ref().expect("connected").view;
        let first = &runs[0].0;
        if view.live_seq != Some(first.sequence)
            || view.live_size != Some(first.offset)
            || first.bytes.is_empty()
        {
            return Ok(1);
        }
        let n = 1 + runs
            .windows(2)
            .take_while(|w| w[1].0.sequence == w[0].0.sequence && w[1].0.offset == w[0].0.end())
            .count();
        Ok(n)
    }

    /// Appends `runs` (checked by [`Standby::joinable`]) with one request.
    fn ship_joined(&mut self, runs: &[(Run<'_>, u64)]) -> Result<Vec<u64>> {
        let mut link = self.link.take().expect("connected");
        // On failure the connection is dropped with everything believed about the standby.
        self.joined_on(&mut link, runs)?;
        self.settle_beyond_pipeline(&mut link)?;
        self.link = Some(link);
        Ok(std::mem::take(&mut self.settled))
    }

    fn joined_on(&mut self, link: &mut Link, runs: &[(Run<'_>, u64)]) -> Result<()> {
        let (first, last) = (&runs[0].0, &runs[runs.len() - 1].0);
        let total = last.end() - first.offset;
        let batch = Batch {
            append: Some((first.offset, total)),
            fsync: self.cfg.fsync,
            trust_cached_size: !self.cfg.verify,
            ..Default::default()
        };
        let script = batch.script(&self.layout, None);
        let dest = format!("{}:{}", self.cfg.host, self.cfg.port);
        let mut feed = |w: &mut dyn Write| -> Result<()> {
            for (run, _) in runs {
                w.write_all(run.bytes)
                    .map_err(|e| transient(format!("sending to the standby {dest}: {e}")))?;
            }
            Ok(())
        };
        link.conn
            .submit(&script, total, &mut feed, self.cfg.command_timeout)?;
        let live = self.layout.live.clone();
        link.view.live_size = Some(last.end());
        link.view.sizes.insert(live.clone(), last.end());
        // One answer confirms them all: the first carries it.
        let sent_at = std::time::Instant::now();
        for (k, (run, tag)) in runs.iter().enumerate() {
            self.next_id += 1;
            let id = self.next_id;
            let (request, appended) = if k == 0 { (true, total) } else { (false, 0) };
            self.pending.push_back(Pending {
                id,
                tag: *tag,
                request,
                start: run.start,
                seq: run.sequence,
                end: run.end(),
                tail: None,
                sum: None,
                appended,
                sent_at,
            });
            self.update_tail(link, &live, run)?;
            self.keep_tail(id, run.sequence, run.end())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hold::Run;
    use logdaemon_sdk::Logger;
    use logdaemon_tests::sshd::Sshd;

    fn run(sequence: u64, offset: u64, bytes: &[u8]) -> Run<'_> {
        Run {
            sequence,
            offset,
            bytes,
            recs: 1,
            start: Position {
                sequence,
                offset,
                line: 0,
            },
        }
    }

    /// Against a real sshd: runs that continue the live file go as one
    /// request (one answer for all, each batch still confirmed in order);
    /// a run of the next file does not join and rotates the standby.
    #[test]
    fn runs_continuing_the_live_file_go_as_one_request_and_a_rotation_does_not_join() {
        let sshd = Sshd::start().expect("start sshd (needs openssh-server)");
        let tmp = tempfile::tempdir().unwrap();
        let remote = tmp.path().join("remote");
        std::fs::create_dir(&remote).unwrap();
        let toml = format!(
            "host = \"127.0.0.1\"\nport = {}\nuser = \"{}\"\nidentity_file = \"{}\"\nknown_hosts = \"{}\"\nremote_dir = \"{}\"\n",
            sshd.port(),
            sshd.user(),
            sshd.client_key().display(),
            sshd.known_hosts().display(),
            remote.display()
        );
        let cfg = crate::config::parse(&toml, "p4", &|p| p.to_path_buf(), &|_| None).unwrap();
        let mut s = Standby::new(
            cfg,
            Logger::discard(),
            tmp.path().join("journal"),
            tmp.path(),
        )
        .unwrap();
        let (a, b, c) = (vec![b'a'; 5000], vec![b'b'; 3000], vec![b'c'; 70_000]);
        // The first run starts the standby's live file (a rotation): alone.
        let first = [(run(1, 0, &a), 1)];
        assert_eq!(s.joinable(&first).unwrap(), 1);
        s.ship_all(&first).unwrap();
        let runs = [
            (run(1, 5000, &b), 2),
            (run(1, 8000, &c), 2),
            (run(1, 78_000, b"d\n"), 3),
            (run(2, 0, b"e\n"), 3),
        ];
        assert_eq!(
            s.joinable(&runs).unwrap(),
            3,
            "the run of sequence 2 does not join"
        );
        let mut confirmed = s.ship_all(&runs).unwrap();
        let requests: Vec<bool> = s.pending.iter().map(|p| p.request).collect();
        // Outstanding: a, then b, c, d as one request (one answer), then e's rotation.
        assert_eq!(requests, [true, true, false, false, true]);
        let mut link = s.link.take().unwrap();
        s.settle_all(&mut link).unwrap();
        confirmed.append(&mut s.settled);
        assert_eq!(confirmed.iter().filter(|t| **t == 2).count(), 2);
        let mut want = a.clone();
        want.extend_from_slice(&b);
        want.extend_from_slice(&c);
        want.extend_from_slice(b"d\n");
        assert!(
            std::fs::read(remote.join("journal.1")).unwrap() == want,
            "the joined runs differ on the standby"
        );
        assert_eq!(std::fs::read(remote.join("journal")).unwrap(), b"e\n");
        let rec = crate::record::load(&crate::record::path(tmp.path()))
            .unwrap()
            .unwrap();
        assert_eq!((rec.sequence, rec.size), (2, 2));
    }
}
