//! The limit of open files, raised as far as the daemon may.
//!
//! The daemon holds each followed journal open (to read what a rotation
//! leaves behind), and listeners may hold files of their own, so a daemon
//! following thousands of journals needs thousands of descriptors. The
//! kernel's default soft limit (1,024) is far below the hard one that
//! service managers give (systemd: 524,288), and raising the soft limit up
//! to the hard one needs no privilege: the daemon does it at start and
//! says what it has.

/// Raises the soft limit of open files to the hard one; returns both (as
/// they are after the attempt), or `None` when they cannot be read.
pub(super) fn raise_open_files() -> Option<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read or write only the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return None;
        }
        if lim.rlim_cur < lim.rlim_max {
            let want = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                lim = want;
            }
        }
    }
    Some((lim.rlim_cur, lim.rlim_max))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_soft_limit_ends_at_the_hard_one() {
        let (soft, hard) = super::raise_open_files().expect("limits");
        assert_eq!(soft, hard);
    }
}
