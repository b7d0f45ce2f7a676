//! Fuzz target `checkpoint_load`: the scenario and its invariants are
//! `logdaemon::fuzzing::checkpoint_load`, replayed by `cargo test -p logdaemon`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    logdaemon::fuzzing::checkpoint_load(data);
});
