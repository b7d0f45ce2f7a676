//! Writing the checkpoint from the workers' shared states.

use std::collections::BTreeSet;

use logdaemon_state::Checkpoint;

use super::{EngineError, Running};
use crate::config::Config;

/// Copies the state of every worker whose state changed since the last
/// save ([`Running::saved`]) into `checkpoint`, and writes the journals it
/// touched. A look at an unchanged worker is a lock and a compare: no copy
/// and no allocation, however many workers are idle.
pub(super) fn save_if_changed(
    cfg: &Config,
    checkpoint: &mut Checkpoint,
    running: &[Running],
    store: &mut logdaemon_state::Store,
) -> Result<(), EngineError> {
    let mut touched = BTreeSet::new(); // the journals to save
    for r in running {
        let s = {
            let s = r.shared.lock().unwrap_or_else(|e| e.into_inner());
            if r.saved.get() == s.version || s.version == 0 {
                // Unchanged: nothing copied (thousands of idle workers).
                continue;
            }
            s.clone()
        };
        r.saved.set(s.version);
        let js = checkpoint.journals.entry(r.journal.clone()).or_default();
        js.listeners.insert(r.listener.clone(), s.cursor);
        if s.owed_reported {
            js.pending_gaps.remove(&r.listener);
        }
        // The files finished before the cursors, by sequence, the latest few.
        for f in s.finished {
            js.finished.retain(|x| x.sequence != f.sequence);
            js.finished.push(f);
        }
        js.finished.sort_by_key(|f| f.sequence);
        let keep = js.finished.len().saturating_sub(16);
        js.finished.drain(..keep);
        touched.insert(r.journal.clone());
    }
    if touched.is_empty() {
        return Ok(());
    }
    // The journal's reader position: the furthest of its listeners.
    // (Of each journal touched: a glob journal's streams are journals too.)
    for name in &touched {
        if let Some(js) = checkpoint.journals.get_mut(name) {
            if let Some(max) = js
                .listeners
                .values()
                .max_by_key(|c| (c.sequence, c.offset))
                .cloned()
            {
                if (max.sequence, max.offset) >= (js.reader.sequence, js.reader.offset)
                    || js.reader.line == 0
                {
                    js.reader = max;
                }
            }
        }
    }
    crate::retarget::remember(cfg, checkpoint, Some(&touched));
    store.save_changed(checkpoint, &touched)?;
    tracing::debug!(state_dir = %cfg.state_dir.display(), "checkpoint written");
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;
    use std::sync::{Arc, Mutex};

    use logdaemon_state::{Checkpoint, Cursor};

    use super::save_if_changed;
    use crate::config::Config;
    use crate::engine::Running;
    use crate::worker::Shared;

    fn running(listener: &str, id: usize) -> Running {
        Running {
            journal: "app".into(),
            listener: listener.into(),
            shared: Arc::new(Mutex::new(Shared::new(Cursor::default()))),
            id,
            halt: Arc::new(AtomicBool::new(false)),
            retired: false,
            saved: std::cell::Cell::new(0),
        }
    }

    /// Moves the worker's cursor to `offset`, as the worker does.
    fn advance(r: &Running, offset: u64) {
        let mut s = r.shared.lock().unwrap();
        s.cursor.offset = offset;
        s.cursor.line = 1;
        s.version += 1;
    }

    fn setup(dir: &std::path::Path) -> (Config, logdaemon_state::Store) {
        let state = dir.join("state");
        std::fs::create_dir(&state).unwrap();
        let text = format!(
            "state_dir = \"{}\"\n[[journal]]\nname = \"app\"\npath = \"app.log\"\nformat = \"lines\"\n[[journal.listener]]\nname = \"a\"\nplugin = \"file\"\n",
            state.display()
        );
        let cfg = Config::parse(&text, &dir.join("cfg.toml")).unwrap();
        let (store, _) = logdaemon_state::Store::open(&cfg.state_dir).unwrap();
        (cfg, store)
    }

    fn offset(c: &Checkpoint, listener: &str) -> Option<u64> {
        c.journals
            .get("app")?
            .listeners
            .get(listener)
            .map(|c| c.offset)
    }

    #[test]
    fn only_workers_changed_since_the_last_save_are_copied() {
        let d = tempfile::tempdir().unwrap();
        let (cfg, mut store) = setup(d.path());
        let mut cp = Checkpoint::default();
        let (a, b) = (running("a", 0), running("b", 1));

        save_if_changed(&cfg, &mut cp, &[], &mut store).unwrap();
        save_if_changed(&cfg, &mut cp, &[running("a", 0)], &mut store).unwrap();
        assert_eq!(
            offset(&cp, "a"),
            None,
            "a worker that never changed is not copied"
        );

        advance(&a, 10);
        advance(&b, 20);
        save_if_changed(&cfg, &mut cp, &[a, b], &mut store).unwrap();
        assert_eq!((offset(&cp, "a"), offset(&cp, "b")), (Some(10), Some(20)));
        assert_eq!(
            cp.journals["app"].reader.offset, 20,
            "the furthest listener"
        );
    }

    #[test]
    fn an_unchanged_worker_is_not_copied_again_and_a_new_one_counts_from_zero() {
        let d = tempfile::tempdir().unwrap();
        let (cfg, mut store) = setup(d.path());
        let mut cp = Checkpoint::default();
        let a = running("a", 0);
        advance(&a, 10);
        let mut all = vec![a];
        save_if_changed(&cfg, &mut cp, &all, &mut store).unwrap();
        assert_eq!(offset(&cp, "a"), Some(10));

        // Another copy of the checkpoint's cursor: a save that finds the
        // worker unchanged leaves it.
        cp.journals
            .get_mut("app")
            .unwrap()
            .listeners
            .get_mut("a")
            .unwrap()
            .offset = 99;
        save_if_changed(&cfg, &mut cp, &all, &mut store).unwrap();
        assert_eq!(
            offset(&cp, "a"),
            Some(99),
            "an unchanged worker was copied again"
        );

        // A reload's new worker for the same listener starts its versions
        // at 1 again: its first change is copied.
        all.push(running("a", 1));
        advance(&all[1], 30);
        save_if_changed(&cfg, &mut cp, &all, &mut store).unwrap();
        assert_eq!(offset(&cp, "a"), Some(30));
    }
}
