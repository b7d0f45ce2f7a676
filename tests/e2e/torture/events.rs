//! Scenarios 12 and 17: lost or missing file events, clock jumps and mtime changes without data.
