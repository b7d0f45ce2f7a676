//! The writer id: which listener (one state directory) wrote a message.
//!
//! It is part of every message id (`Nats-Msg-Id`), so the chain of
//! `Nats-Expected-Last-Msg-Id` checks names this writer: a message sent
//! behind another of ours is stored only after that very message, never
//! after another writer's message at the same journal position (a second
//! daemon on the same journal and subject computes the same positions). It
//! is kept in the listener's private state directory, so it survives a
//! restart: after a crash the same writer goes on, and its ids (and
//! JetStream's de-duplication by id) stay what they were.

use std::fs;
use std::io::Read;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use logdaemon_sdk::durable;

/// The file in the listener's state directory.
pub const FILE_NAME: &str = "nats-writer-id";

/// Reads the writer id of `state_dir`, creating it (durably) on first use.
/// `Err` says what is wrong and what to do.
pub fn load_or_create(state_dir: &Path) -> Result<String, String> {
    let path = state_dir.join(FILE_NAME);
    match fs::read_to_string(&path) {
        Ok(text) => {
            let id = text.trim_end_matches('\n');
            if valid(id) {
                Ok(id.to_string())
            } else {
                Err(format!(
                    "{}: {id:?} is not a writer id (1 to 64 of a-z, 0-9, -): the file was changed by hand; remove it and start again (the listener then publishes as a new writer)",
                    path.display()
                ))
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let id = fresh();
            durable::replace(&path, format!("{id}\n").as_bytes(), true)
                .map_err(|e| format!("cannot keep the writer id: {e}"))?;
            Ok(id)
        }
        Err(e) => Err(format!(
            "cannot read {}: {e}; check the state directory",
            path.display()
        )),
    }
}

/// Characters a writer id may hold: it goes into a message id and a header.
fn valid(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A new id: 64 random bits (the clock and the process id where the system
/// has no random source).
fn fresh() -> String {
    let mut bytes = [0u8; 8];
    let random = fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if random.is_ok() {
        return bytes.iter().map(|b| format!("{b:02x}")).collect();
    }
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{:x}-{nanos:x}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_is_kept_across_opens_and_differs_between_state_directories() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let first = load_or_create(a.path()).unwrap();
        assert!(valid(&first), "{first:?}");
        assert_eq!(load_or_create(a.path()).unwrap(), first, "durable");
        assert_ne!(load_or_create(b.path()).unwrap(), first);
        let text = fs::read_to_string(a.path().join(FILE_NAME)).unwrap();
        assert_eq!(text, format!("{first}\n"));
    }

    #[test]
    fn a_changed_id_file_is_refused_naming_it() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join(FILE_NAME), "a:b\n").unwrap();
        let e = load_or_create(d.path()).unwrap_err();
        assert!(e.contains(FILE_NAME) && e.contains("remove it"), "{e}");
    }
}
