//! Framing tests that need more than one module: slow reference parsers,
//! generated adversarial journals, and the real p4 corpus.

mod corpus;
mod generated;
use super::reference;
