//! Decompression by magic bytes.
