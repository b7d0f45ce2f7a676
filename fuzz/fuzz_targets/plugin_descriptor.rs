//! Fuzz target `plugin_descriptor`: the scenario and its invariants are
//! `logdaemon::fuzzing::plugin_descriptor`, replayed by `cargo test -p logdaemon`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    logdaemon::fuzzing::plugin_descriptor(data);
});
