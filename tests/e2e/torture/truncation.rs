//! Scenarios 1, 2 and 14: copytruncate under load, truncation in place with regrowth, and a writer without O_APPEND.
