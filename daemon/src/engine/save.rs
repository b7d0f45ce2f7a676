//! Writing the checkpoint from the workers' shared states.

use std::collections::BTreeMap;

use logdaemon_state::Checkpoint;

use super::{EngineError, Running};
use crate::config::Config;

pub(super) fn save_if_changed(
    cfg: &Config,
    checkpoint: &mut Checkpoint,
    running: &[Running],
    versions: &mut BTreeMap<(String, String), u64>,
    store: &mut logdaemon_state::Store,
) -> Result<(), EngineError> {
    let mut changed = false;
    let mut touched = std::collections::BTreeSet::new(); // the journals to save
    for r in running {
        let key = (r.journal.clone(), r.listener.clone());
        let s = {
            let s = r.shared.lock().unwrap_or_else(|e| e.into_inner());
            if versions.get(&key) == Some(&s.version) || s.version == 0 {
                // Unchanged: nothing copied (thousands of idle workers).
                continue;
            }
            s.clone()
        };
        versions.insert(key, s.version);
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
        changed = true;
        touched.insert(r.journal.clone());
    }
    if !changed {
        return Ok(());
    }
    // The journal's reader position: the furthest of its listeners.
    // (Of each running journal: a glob journal's streams are journals too.)
    for name in running.iter().map(|r| &r.journal) {
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
    crate::retarget::remember(cfg, checkpoint);
    store.save_changed(checkpoint, &touched)?;
    tracing::debug!(state_dir = %cfg.state_dir.display(), "checkpoint written");
    Ok(())
}
