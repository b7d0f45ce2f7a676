//! SIGHUP: reading the config again and working out what changed.
//!
//! The comparison is on the parsed TOML tables, not on the validated
//! config: a journal whose own table changed (path, format, settings)
//! restarts all its listeners; a listener whose table changed restarts
//! alone; added ones start and removed ones stop after the batch in hand,
//! their cursors kept in the checkpoint. Settings of the whole daemon
//! (`state_dir`, `plugin_dir`, `watch`, …) need a restart: a reload that
//! changes them is applied to the journals only, with a warning.

use std::collections::BTreeMap;

use toml::{Table, Value};

/// The parts of a config file a reload compares, each kept as the text
/// of its parsed table: one line of TOML, keys sorted, the same for tables
/// that parse equal. Kept for the whole run, so it holds text, not the
/// parsed tables (a few hundred bytes per journal rather than kilobytes:
/// thousands of journals are followed by one daemon).
#[derive(Debug, Default, Clone, PartialEq)]
pub(super) struct Snapshot {
    /// Everything but the journals.
    top: String,
    /// Per journal: its table without its listeners, and its listeners' tables by name.
    journals: BTreeMap<String, (String, Tables)>,
}

/// Listeners' tables by name, sorted by name, each name once: a vector,
/// as a map's first node has room for eleven and most journals have one.
type Tables = Vec<(String, String)>;

/// The table of listener `name` in `ls`.
fn table<'a>(ls: &'a Tables, name: &str) -> Option<&'a String> {
    let i = ls.binary_search_by(|(k, _)| k.as_str().cmp(name)).ok()?;
    Some(&ls[i].1)
}

/// The text a snapshot keeps of a table.
fn canonical(t: Table) -> String {
    Value::Table(t).to_string()
}

impl Snapshot {
    /// The snapshot of a config file's text (already validated by
    /// `Config::parse`, so its shape is known to be right).
    pub(super) fn of(text: &str) -> Snapshot {
        let Ok(mut top) = text.parse::<Table>() else {
            return Snapshot::default();
        };
        let mut journals = BTreeMap::new();
        if let Some(Value::Array(list)) = top.remove("journal") {
            for j in list {
                let Value::Table(mut t) = j else { continue };
                let name = t
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let mut listeners = BTreeMap::new();
                if let Some(Value::Array(ls)) = t.remove("listener") {
                    for l in ls {
                        let lname = l
                            .get("name")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string();
                        listeners.insert(lname, l.to_string());
                    }
                }
                let listeners: Tables = listeners.into_iter().collect();
                journals.insert(name, (canonical(t), listeners));
            }
        }
        Snapshot {
            top: canonical(top),
            journals,
        }
    }
}

/// A (journal, listener) pair by name.
pub(super) type Pair = (String, String);

/// What a reload does.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Plan {
    /// Stop for good (removed from the config).
    pub stop: Vec<Pair>,
    /// Stop, then start again with the new config.
    pub restart: Vec<Pair>,
    /// New: start.
    pub start: Vec<Pair>,
    /// Settings of the whole daemon changed: they need a restart.
    pub top_changed: bool,
}

impl Plan {
    #[cfg(test)]
    pub(super) fn is_empty(&self) -> bool {
        self.stop.is_empty() && self.restart.is_empty() && self.start.is_empty()
    }
}

/// What to do to go from `old` to `new`.
pub(super) fn plan(old: &Snapshot, new: &Snapshot) -> Plan {
    let mut p = Plan {
        top_changed: old.top != new.top,
        ..Plan::default()
    };
    for (j, (jt, ls)) in &old.journals {
        let kept = new.journals.get(j);
        for (l, lt) in ls {
            let pair = (j.clone(), l.clone());
            match kept {
                None => p.stop.push(pair),
                Some((njt, nls)) => match table(nls, l) {
                    None => p.stop.push(pair),
                    Some(nlt) if njt != jt || nlt != lt => p.restart.push(pair),
                    Some(_) => {}
                },
            }
        }
    }
    for (j, (_, ls)) in &new.journals {
        let old_ls = old.journals.get(j).map(|(_, ls)| ls);
        for (l, _) in ls {
            if old_ls.is_none_or(|o| table(o, l).is_none()) {
                p.start.push((j.clone(), l.clone()));
            }
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
state_dir = "state"
[[journal]]
name = "p4"
path = "journal"
[[journal.listener]]
name = "copy"
plugin = "file"
[journal.listener.config]
path = "out/copy"
[[journal.listener]]
name = "mail"
plugin = "email"
[[journal]]
name = "app"
path = "app.log"
format = "lines"
[[journal.listener]]
name = "copy"
plugin = "file"
"#;

    fn pairs(v: &[(&str, &str)]) -> Vec<Pair> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn the_same_config_changes_nothing() {
        let p = plan(&Snapshot::of(BASE), &Snapshot::of(BASE));
        assert!(p.is_empty() && !p.top_changed, "{p:?}");
    }

    #[test]
    fn keys_reordered_and_comments_change_nothing_a_changed_value_does() {
        let moved = BASE
            .replace(
                "name = \"copy\"\nplugin = \"file\"\n[journal.listener.config]\npath = \"out/copy\"",
                "plugin = \"file\" # the copy\nname = \"copy\"\n\n[journal.listener.config]\npath = \"out/copy\"",
            )
            .replace("name = \"app\"\npath = \"app.log\"", "path = \"app.log\"\nname = \"app\"");
        assert_ne!(moved, BASE);
        let p = plan(&Snapshot::of(BASE), &Snapshot::of(&moved));
        assert!(p.is_empty() && !p.top_changed, "{p:?}");
        let deeper = BASE.replace(
            "path = \"out/copy\"",
            "path = \"out/copy\"\nmode = { fsync = false }",
        );
        let p = plan(&Snapshot::of(BASE), &Snapshot::of(&deeper));
        assert_eq!(p.restart, pairs(&[("p4", "copy")]));
    }

    #[test]
    fn added_removed_and_changed_listeners_and_journals() {
        let new = BASE
            .replace("path = \"out/copy\"", "path = \"out/copy2\"")
            .replace(
                "name = \"mail\"\nplugin = \"email\"\n",
                "name = \"hook\"\nplugin = \"exec\"\n",
            )
            .replace(
                "format = \"lines\"",
                "format = \"lines\"\nreconcile_every = \"5s\"",
            );
        let p = plan(&Snapshot::of(BASE), &Snapshot::of(&new));
        assert_eq!(p.stop, pairs(&[("p4", "mail")]));
        assert_eq!(p.restart, pairs(&[("app", "copy"), ("p4", "copy")]));
        assert_eq!(p.start, pairs(&[("p4", "hook")]));
        assert!(!p.top_changed);
    }

    #[test]
    fn a_removed_journal_stops_its_listeners_and_daemon_settings_are_flagged() {
        let i = BASE.find("[[journal]]\nname = \"app\"").unwrap();
        let new = BASE[..i].replace("state_dir = \"state\"", "state_dir = \"elsewhere\"");
        let p = plan(&Snapshot::of(BASE), &Snapshot::of(&new));
        assert_eq!(p.stop, pairs(&[("app", "copy")]));
        assert!(p.restart.is_empty() && p.start.is_empty());
        assert!(p.top_changed);
    }
}

mod apply {
    use std::sync::atomic::Ordering;
    use std::sync::Arc;

    use logdaemon_state::Checkpoint;

    use super::{plan, Pair, Snapshot};
    use crate::config::{Config, JournalConfig, ListenerConfig};
    use crate::engine::open::Context;
    use crate::engine::save::save_if_changed;
    use crate::engine::{EngineError, Fleet};

    impl Fleet {
        /// SIGHUP: reads the config file again and applies what changed. A
        /// config that does not validate changes nothing: the error is
        /// logged and the running config kept.
        pub(in crate::engine) fn reload(
            &mut self,
            ctx: &Context<'_>,
            current: &mut Config,
            snapshot: &mut Snapshot,
            checkpoint: &mut Checkpoint,
            store: &mut logdaemon_state::Store,
            watcher: Option<&mut notify::RecommendedWatcher>,
        ) -> Result<(), EngineError> {
            let file = current.file.clone();
            let loaded = std::fs::read_to_string(&file)
                .map_err(|e| format!("cannot read {}: {e}", file.display()))
                .and_then(|text| {
                    let cfg = Config::parse(&text, &file).map_err(|e| e.to_string())?;
                    crate::retarget::check(&cfg, checkpoint)?;
                    Ok((cfg, text))
                });
            let (new, text) = match loaded {
                Ok(x) => x,
                Err(e) => {
                    tracing::error!(config = %file.display(), "SIGHUP: the config is not reloaded, the running one is kept: {e}");
                    return Ok(());
                }
            };
            let next = Snapshot::of(&text);
            let mut p = plan(snapshot, &next);
            // A glob journal's streams are started and ended by its files;
            // a change of its table applies at the next start.
            let glob = |(j, _): &Pair| current.globs.contains_key(j) || new.globs.contains_key(j);
            let skipped: Vec<&Pair> = p
                .stop
                .iter()
                .chain(&p.restart)
                .chain(&p.start)
                .filter(|x| glob(x))
                .collect();
            if !skipped.is_empty() {
                let names: Vec<String> = skipped.iter().map(|(j, l)| format!("{j}/{l}")).collect();
                tracing::warn!(config = %file.display(), "SIGHUP: changes to glob journals apply at the next start: {}", names.join(", "));
            }
            p.stop.retain(|x| !glob(x));
            p.restart.retain(|x| !glob(x));
            p.start.retain(|x| !glob(x));
            if p.top_changed {
                tracing::warn!(config = %file.display(), "SIGHUP: settings outside the journals changed (state_dir, plugin_dir, watch, …); they apply at the next start, the journals now");
            }
            tracing::info!(config = %file.display(), stop = p.stop.len(), restart = p.restart.len(), start = p.start.len(), "SIGHUP: config reloaded");
            for pair in p.stop.iter().chain(&p.restart) {
                self.retire(pair);
            }
            for (j, l) in &p.restart {
                if let Some((jc, lc)) = find(&new, j, l) {
                    let old = self.index_of(j, l).expect("retired above");
                    let id = self.running[old].id;
                    self.pending.push((ctx.journal(jc), lc.clone(), id));
                }
            }
            let mut pinned = false;
            for (j, l) in &p.start {
                if let Some((jc, lc)) = find(&new, j, l) {
                    let jc = ctx.journal(jc);
                    match ctx.worker(&jc, lc, checkpoint) {
                        Ok((w, pin)) => {
                            pinned |= pin;
                            self.launch(w, 0.5);
                        }
                        Err(e) => {
                            tracing::error!(journal = %j, listener = %l, "SIGHUP: the new listener cannot start: {e}; the others run on")
                        }
                    }
                }
            }
            if pinned {
                store.save(checkpoint)?;
            }
            if let Some(w) = watcher {
                use notify::Watcher;
                for j in &new.journals {
                    if let Some(d) = j.path.parent() {
                        // Watching a directory twice is harmless.
                        if w.watch(d, notify::RecursiveMode::NonRecursive).is_err() {
                            crate::engine::watch::events_missed();
                        }
                    }
                }
            }
            let mut kept = new;
            kept.state_dir = current.state_dir.clone();
            kept.plugin_dir = current.plugin_dir.clone();
            kept.watch = current.watch;
            *current = kept;
            *snapshot = next;
            Ok(())
        }

        fn index_of(&self, journal: &str, listener: &str) -> Option<usize> {
            self.running
                .iter()
                .rposition(|r| r.journal == journal && r.listener == listener)
        }

        /// Stops the worker of `pair` after the batch in hand.
        fn retire(&mut self, (journal, listener): &Pair) {
            let Some(i) = self.index_of(journal, listener) else {
                return;
            };
            let r = &mut self.running[i];
            if r.retired {
                return;
            }
            r.retired = true;
            self.generation += 1;
            r.halt.store(true, Ordering::SeqCst);
            self.pool.wake(r.id);
        }

        /// Starts the changed listeners whose old worker is done, from the
        /// cursor it left (saved first).
        pub(in crate::engine) fn restart_pending(
            &mut self,
            ctx: &Context<'_>,
            current: &Config,
            checkpoint: &mut Checkpoint,
            store: &mut logdaemon_state::Store,
        ) -> Result<(), EngineError> {
            if self.pending.is_empty() {
                return Ok(());
            }
            let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending)
                .into_iter()
                .partition(|(_, _, id)| self.pool.is_done(*id));
            self.pending = waiting;
            if ready.is_empty() {
                return Ok(());
            }
            save_if_changed(current, checkpoint, &self.running, store)?;
            let mut pinned = false;
            for (j, l, _) in ready {
                match ctx.worker(&j, &l, checkpoint) {
                    Ok((w, pin)) => {
                        pinned |= pin;
                        self.launch(w, 0.5);
                    }
                    Err(e) => {
                        tracing::error!(journal = %j.name, listener = %l.name, "SIGHUP: the changed listener cannot start again: {e}; its cursor is kept, the others run on")
                    }
                }
            }
            if pinned {
                store.save(checkpoint)?;
            }
            Ok(())
        }
    }

    fn find<'a>(
        cfg: &'a Config,
        journal: &str,
        listener: &str,
    ) -> Option<(&'a JournalConfig, &'a Arc<ListenerConfig>)> {
        let j = cfg.journals.iter().find(|j| j.name == journal)?;
        let l = j.listeners.iter().find(|l| l.name == listener)?;
        Some((j, l))
    }
}
