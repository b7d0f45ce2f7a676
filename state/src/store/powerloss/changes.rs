//! The power-loss exploration of the daemon's saves of changes
//! (`checkpoint.log`) and of the migration from format version 1: the
//! versions they save, and their tests.

use super::{explore_in, show, Mode, Outcome};
use crate::model::Checkpoint;
use crate::store::simfs::Omit;

/// `cp` as a logdaemon of format version 1 wrote it.
pub(super) fn version_1_text(cp: &Checkpoint) -> String {
    let text = cp.to_toml().replace("\nversion = 2\n", "\nversion = 1\n");
    assert!(text.contains("\nversion = 1\n") && !text.contains("\ngeneration ="));
    text
}

/// Journals in a [`Mode::Changes`] checkpoint.
const JOURNALS: u64 = 3;

/// Saves in a row in [`Mode::Changes`]: a whole first save, a log created,
/// appended to, folded by a whole save once as large as the checkpoint, and
/// created again.
const SAVES_OF_CHANGES: u64 = 7;

/// The journal save `n` changes in [`Mode::Changes`] (save 1 writes all).
pub(super) fn changed_by(n: u64) -> String {
    format!("j{}", n % JOURNALS)
}

/// Version `n` of a [`Mode::Changes`] checkpoint: each journal as the last
/// save that changed it left it, so versions differ in one journal each.
pub(super) fn version_of_changes(n: u64) -> Checkpoint {
    let mut cp = Checkpoint::default();
    for j in 0..JOURNALS {
        let last = (2..=n).filter(|k| k % JOURNALS == j).max().unwrap_or(1);
        let js = super::version(last).journals.remove("p4").unwrap();
        cp.journals.insert(format!("j{j}"), js);
    }
    cp
}

#[test]
fn every_power_loss_during_saves_of_changes_leaves_the_last_returned_save_or_a_later_one() {
    let f = explore_in(Mode::Changes, Omit::Nothing, SAVES_OF_CHANGES, true);
    show(&format!(
        "power loss, saves of changes (checkpoint.log): {}",
        f.summary()
    ));
    assert!(
        f.bad.is_empty(),
        "{} of {} crash states are bad, e.g.:\n{}",
        f.bad.len(),
        f.states,
        f.bad[..f.bad.len().min(5)].join("\n")
    );
    assert_eq!(f.count(Outcome::ViaPrevious), 0, "{}", f.summary());
    assert!(
        f.count(Outcome::InProgress) > 0 && f.count(Outcome::LastReturned) > 0,
        "{}",
        f.summary()
    );
    assert!(
        f.logged_states > 0 && f.torn_records > 0,
        "the log was not exercised: {} crash states with a log, {} with a torn record",
        f.logged_states,
        f.torn_records
    );
}

#[test]
fn a_log_append_whose_fsync_does_nothing_is_caught() {
    let f = explore_in(Mode::Changes, Omit::FileSync, 4, false);
    show(&format!(
        "power loss, saves of changes, file fsync ignored: {}",
        f.summary()
    ));
    assert!(
        f.bad.iter().any(|b| b.contains("though save 3 returned")),
        "the model missed the lost append: {}",
        f.summary()
    );
}

#[test]
fn every_power_loss_during_the_migration_from_version_1_loads_the_checkpoint() {
    let f = explore_in(Mode::Migration, Omit::Nothing, 4, true);
    show(&format!(
        "power loss, migration from version 1: {}",
        f.summary()
    ));
    assert!(
        f.bad.is_empty(),
        "{} of {} crash states are bad, e.g.:\n{}",
        f.bad.len(),
        f.states,
        f.bad[..f.bad.len().min(5)].join("\n")
    );
    assert_eq!(f.count(Outcome::ViaPrevious), 0, "{}", f.summary());
    // Crash states from before and after the migration were both met.
    assert!(
        f.version_1_states > 0 && f.version_1_states < f.states,
        "{} of {} crash states in version 1",
        f.version_1_states,
        f.states
    );
}
