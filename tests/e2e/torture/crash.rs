//! Scenarios 10, 13 and 15: kill -9 at any moment, records split across rotations and restarts, partial last lines and a 64 MiB record.
