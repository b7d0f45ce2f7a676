//! How many outputs the `file` listeners of this process keep open between
//! calls.
//!
//! A daemon following thousands of journals, each copied to its own file,
//! would otherwise hold three descriptors per journal (the journal, the
//! output, the listener's record) and run out of them long before memory
//! or threads. So a listener keeps its output and its record open between
//! calls only while fewer than [`budget`] listeners of this process do,
//! and none keeps them once its journal went quiet (`no_data`); the others
//! open them for each call and close them after it. Each reopening checks
//! that the output is still the file it wrote (`Output::file`), so a file
//! put in its place meanwhile is refused, never written.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// Listeners holding their files open now.
static HELD: AtomicUsize = AtomicUsize::new(0);

/// Listeners that may hold their files (two each: the output and the
/// record) open between calls: together a quarter of the process's limit
/// of open files, at least 16 listeners. The journals themselves, which
/// the host holds open, need most of the rest.
pub(crate) fn budget() -> usize {
    static BUDGET: OnceLock<usize> = OnceLock::new();
    *BUDGET.get_or_init(|| {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes the struct we pass and nothing else.
        let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0;
        let soft = if ok { lim.rlim_cur as usize } else { 1024 };
        (soft / 8).max(16)
    })
}

/// One listener's right to keep its files open between calls.
#[derive(Debug, Default)]
pub(crate) struct Hold(bool);

impl Hold {
    /// Takes the right if the budget allows; true when held.
    pub(crate) fn take(&mut self) -> bool {
        if !self.0 {
            self.0 = HELD
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    (n < budget()).then_some(n + 1)
                })
                .is_ok();
        }
        self.0
    }

    /// Gives the right back (the files are closed by the caller).
    pub(crate) fn give(&mut self) {
        if std::mem::take(&mut self.0) {
            HELD.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.give();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_more_than_the_budget_hold_and_a_given_right_is_free_again() {
        let mut holds: Vec<Hold> = (0..budget() + 3).map(|_| Hold::default()).collect();
        let taken = holds
            .iter_mut()
            .filter_map(|h| h.take().then_some(()))
            .count();
        // Other tests of this process may hold some: never more than the budget.
        assert!(taken <= budget() && taken > 0, "{taken} of {}", budget());
        assert!(!holds.last_mut().unwrap().take(), "over the budget");
        let first = holds.iter().position(|h| h.0).unwrap();
        holds[first].give();
        assert!(holds.last_mut().unwrap().take(), "free again");
        assert!(holds.last_mut().unwrap().take(), "taking twice counts once");
    }
}
