//! Scenarios 7 to 9: telling files apart when inodes are reused, first lines are identical, or files are smaller than any fingerprint.
