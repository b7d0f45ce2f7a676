//! Scenario 16: a compressed predecessor that is still being written or is corrupt.
