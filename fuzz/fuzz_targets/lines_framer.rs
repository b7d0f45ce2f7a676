//! Fuzz target `lines_framer`: the scenario and its invariants are
//! `logdaemon::fuzzing::lines_framer`, replayed by `cargo test -p logdaemon`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    logdaemon::fuzzing::lines_framer(data);
});
