//! A real OpenSSH server on a loopback port, with generated keys.
