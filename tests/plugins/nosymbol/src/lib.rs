//! A perfectly loadable shared library that is not a listener: it exports a
//! function, but not the entry symbol `logdaemon_listener_v1`. The host must
//! refuse it with a message naming the file.

/// Something for the library to export, so it is an ordinary library.
#[no_mangle]
pub extern "C" fn logdaemon_test_not_a_listener() -> u32 {
    42
}
