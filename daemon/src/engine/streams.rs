//! Glob journals while the daemon runs: the one place where their streams
//! start and end (see [`crate::streams`]).

use std::path::PathBuf;

use logdaemon_state::Checkpoint;

use super::open::Context;
use super::{EngineError, Fleet};
use crate::streams::Streams;
use crate::worker::WorkerStatus;

impl Fleet {
    /// Looks at the globs of `dirs` (`None`: those due), starts the streams
    /// of new files, tells those whose file was deleted to end once their
    /// last bytes are delivered, and removes the ended ones from the fleet
    /// and the checkpoint.
    pub(super) fn update_streams(
        &mut self,
        ctx: &Context<'_>,
        streams: &mut Streams,
        dirs: Option<&[PathBuf]>,
        checkpoint: &mut Checkpoint,
        store: &mut logdaemon_state::Store,
    ) -> Result<(), EngineError> {
        if !streams.any() || ctx.once || ctx.stop.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(());
        }
        let changes = streams.poll(dirs);
        for name in &changes.gone {
            for r in self.running.iter().filter(|r| &r.journal == name) {
                r.shared.lock().unwrap_or_else(|e| e.into_inner()).retire = true;
                self.pool.wake(r.id);
            }
        }
        let mut save = false;
        for j in &changes.added {
            // Whoever can create files in the directory creates streams: one
            // a listener refuses (its output exists, not written by it) is
            // left out, and the others run on.
            streams.prepare(j, checkpoint);
            let jc = ctx.journal(j);
            match ctx.workers(&jc, checkpoint) {
                Ok(opened) => {
                    for (w, pin) in opened {
                        save |= pin;
                        self.launch(w, 0.5);
                    }
                }
                Err(e) => {
                    checkpoint.journals.remove(&j.name);
                    tracing::error!(stream = %j.name, error = %e, "the new file is not followed (until the daemon is started again)");
                }
            }
        }
        save |= self.end_streams(streams, checkpoint);
        if save {
            store.save(checkpoint)?;
        }
        Ok(())
    }

    /// Removes from the fleet and the checkpoint the streams told to end
    /// whose workers have all ended; returns whether any did (save then).
    fn end_streams(&mut self, streams: &mut Streams, checkpoint: &mut Checkpoint) -> bool {
        let pool = &self.pool;
        let ended = |r: &super::Running| {
            pool.is_done(r.id) && {
                let sh = r.shared.lock().unwrap_or_else(|e| e.into_inner());
                sh.retire && sh.status == WorkerStatus::Done
            }
        };
        let mut names: Vec<String> = self
            .running
            .iter()
            .filter(|r| ended(r))
            .map(|r| r.journal.clone())
            .collect();
        names.sort();
        names.dedup();
        let mut ended_any = false;
        for name in names {
            if self.running.iter().any(|r| r.journal == name && !ended(r)) {
                continue;
            }
            let (gone, keep): (Vec<_>, Vec<_>) =
                self.running.drain(..).partition(|r| r.journal == name);
            self.running = keep;
            let mut last = 0;
            for r in gone {
                let sh = r.shared.lock().unwrap_or_else(|e| e.into_inner());
                last = last.max(sh.cursor.sequence);
                drop(sh);
            }
            checkpoint.journals.remove(&name);
            streams.ended(&name, last);
            tracing::info!(stream = %name, "stream ended: its file was deleted and its last entries delivered");
            ended_any = true;
            self.generation += 1;
        }
        ended_any
    }
}
