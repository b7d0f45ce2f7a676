//! A real SMTP server on a loopback port, writing to a mailbox.
