//! Fuzz target `config_load`: the scenario and its invariants are
//! `logdaemon::fuzzing::config_load`, replayed by `cargo test -p logdaemon`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    logdaemon::fuzzing::config_load(data);
});
