//! Journal formats.
