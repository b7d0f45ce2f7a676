//! Scenarios 3 to 6: rename rotation with and without compression, while the daemon is down, lagging, or while the writer keeps appending to the renamed file.
