//! Entries read from disk, owned, on their way to one listener.

use logdaemon_sdk::Position;

/// Metadata of one entry; its bytes are `Batch::bytes[start..start + len]`.
#[derive(Debug, Clone, Copy)]
pub struct Meta {
    pub sequence: u64,
    pub offset: u64,
    pub len: u64,
    pub line: u64,
    pub lines: u64,
    pub flags: u32,
    pub start: usize,
}

impl Meta {
    pub fn end(&self) -> Position {
        Position { sequence: self.sequence, offset: self.offset + self.len, line: self.line + self.lines }
    }
}

/// A batch: entries in stream order, bytes in one buffer.
#[derive(Debug, Default)]
pub struct Batch {
    pub bytes: Vec<u8>,
    pub entries: Vec<Meta>,
    /// Position after the last entry (also moves over skipped bytes).
    pub end: Option<Position>,
}

impl Batch {
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.entries.clear();
        self.end = None;
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn push(&mut self, m: Meta, raw: &[u8]) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(raw);
        let m = Meta { start, ..m };
        self.end = Some(m.end());
        self.entries.push(m);
    }

    pub fn raw(&self, m: &Meta) -> &[u8] {
        &self.bytes[m.start..m.start + m.len as usize]
    }
}

/// Bytes that can no longer be delivered (reported with `on_gap = "report"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GapEvent {
    pub from: Position,
    pub to: Position,
    pub cause: &'static str,
    pub detail: String,
}
