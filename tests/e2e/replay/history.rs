//! A journal's history written by the test, and the reference filter:
//! the range a replay must return, computed over the concatenated history
//! with none of the daemon's code.

use std::path::Path;
use std::process::Command;

/// One entry of the history, as the writer made it.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Index of the file in the history (oldest 0).
    pub file: usize,
    pub offset: u64,
    pub bytes: Vec<u8>,
    /// Seconds; `i64::MIN`: no time yet, `i64::MAX`: transaction not closed.
    pub time: i64,
}

/// The range, as given to `logdaemon replay`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Range {
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// (file index, offset)
    pub from: Option<(usize, u64)>,
    pub to: Option<(usize, u64)>,
}

/// The reference filter: the slice from the first entry at or after
/// `from` whose time is at or after `since`, to the first entry after it
/// at or after `to` or `until`.
pub fn slice(entries: &[Entry], r: Range) -> Vec<u8> {
    let mut out = Vec::new();
    let mut started = false;
    for e in entries {
        let here = (e.file, e.offset);
        if !started {
            if r.from.is_some_and(|f| here < f) || r.since.is_some_and(|s| e.time < s) {
                continue;
            }
            started = true;
        }
        if r.to.is_some_and(|t| here >= t) || r.until.is_some_and(|u| e.time >= u) {
            break;
        }
        out.extend_from_slice(&e.bytes);
    }
    out
}

/// The p4 records of `data`: a record ends at a newline after an even
/// number of `@`.
pub fn p4_records(data: &[u8]) -> Vec<Vec<u8>> {
    let (mut out, mut start, mut ats) = (Vec::new(), 0, 0usize);
    for (i, &b) in data.iter().enumerate() {
        if b == b'@' {
            ats += 1;
        } else if b == b'\n' && ats & 1 == 0 {
            out.push(data[start..=i].to_vec());
            start = i + 1;
            ats = 0;
        }
    }
    out
}

/// Splits `records` (with their own times, `None` for p4 data records)
/// into files at `cuts` (record indices), and gives each record its time:
/// p4 data records take the next marker's, line records without one the
/// previous record's.
pub fn entries(records: &[(Vec<u8>, Option<i64>)], cuts: &[usize], p4: bool) -> Vec<Entry> {
    let mut out = Vec::new();
    let (mut file, mut offset) = (0usize, 0u64);
    let mut last = i64::MIN;
    for (i, (bytes, t)) in records.iter().enumerate() {
        if cuts.contains(&i) {
            file += 1;
            offset = 0;
        }
        let time = match (t, p4) {
            (Some(t), _) => {
                last = *t;
                *t
            }
            (None, true) => records[i..]
                .iter()
                .find_map(|(_, t)| *t)
                .unwrap_or(i64::MAX),
            (None, false) => last,
        };
        out.push(Entry {
            file,
            offset,
            bytes: bytes.clone(),
            time,
        });
        offset += bytes.len() as u64;
    }
    out
}

/// The bytes of each file.
pub fn files(entries: &[Entry]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    for e in entries {
        while out.len() <= e.file {
            out.push(Vec::new());
        }
        out[e.file].extend_from_slice(&e.bytes);
    }
    out
}

/// Writes `data` to `path`, compressed by the real tool its extension
/// names (`.gz`, `.bz2`, `.xz`, `.zst`), or plain.
pub fn write_file(path: &Path, data: &[u8]) {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let tool = [
        (".gz", "gzip"),
        (".bz2", "bzip2"),
        (".xz", "xz"),
        (".zst", "zstd"),
    ]
    .iter()
    .find(|(ext, _)| name.ends_with(ext))
    .map(|(_, t)| *t);
    let Some(tool) = tool else {
        std::fs::write(path, data).unwrap();
        return;
    };
    let plain = path.with_extension("plain-tmp");
    std::fs::write(&plain, data).unwrap();
    let out = std::fs::File::create(path).unwrap();
    let status = Command::new(tool)
        .args(["-c", "-q"])
        .arg(&plain)
        .stdout(out)
        .status()
        .unwrap_or_else(|e| {
            panic!("{tool} is needed for this test (scripts/deps.sh installs it): {e}")
        });
    assert!(status.success(), "{tool} failed");
    std::fs::remove_file(&plain).unwrap();
}

/// The UTC calendar date and time of `secs`: (year, month, day, hour,
/// minute, second), by the days-from-civil algorithm.
pub fn civil(secs: i64) -> (i64, i64, i64, i64, i64, i64) {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, rem / 3600, rem % 3600 / 60, rem % 60)
}

/// RFC 3339 of `secs` (UTC), for `--since` / `--until`.
pub fn rfc3339(secs: i64) -> String {
    let (y, mo, d, h, mi, s) = civil(secs);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// Python logging's default time layout of `secs` (UTC) and `millis`.
pub fn python_time(secs: i64, millis: u32) -> String {
    let (y, mo, d, h, mi, s) = civil(secs);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02},{millis:03}")
}

#[test]
fn civil_dates_are_right() {
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339(1_411_123_744), "2014-09-19T10:49:04Z");
    assert_eq!(rfc3339(1_709_210_096), "2024-02-29T12:34:56Z");
}
