//! Locating, vetting and loading plugin libraries.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use logdaemon_sdk::abi::{self, v1, Checked, EntryFn};
use logdaemon_sdk::trust::{self, Untrusted};

use crate::config::PluginRef;

/// A loaded, checked plugin library. Lives for the whole process.
#[derive(Debug)]
pub struct Plugin {
    pub path: PathBuf,
    pub api: Checked,
}

/// Why a plugin could not be used. Every message names the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("plugin {name:?}: built-in listener library {} not found; install the package (built-in listeners go to /usr/lib/logdaemon/plugins), build the workspace (`cargo build --release --workspace`), or set plugin_dir in the config", path.display())]
    BuiltinMissing { name: String, path: PathBuf },
    #[error("plugin {}: no such file; check `plugin = ...` in the config (a relative path is taken from the config file's directory)", path.display())]
    Missing { path: PathBuf },
    #[error("plugin {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("plugin {}: not a regular file", path.display())]
    NotAFile { path: PathBuf },
    #[error("plugin {}: {what} {} is writable by group or others (mode {mode:04o}); anyone who can write it can run code as this daemon; fix: chmod go-w {}", path.display(), target.display(), target.display())]
    Writable {
        path: PathBuf,
        what: &'static str,
        target: PathBuf,
        mode: u32,
    },
    #[error("plugin {}: {what} {} is owned by uid {owner}, neither root nor this daemon's user (uid {me}); fix: chown it to root or to uid {me}", path.display(), target.display())]
    Owner {
        path: PathBuf,
        what: &'static str,
        target: PathBuf,
        owner: u32,
        me: u32,
    },
    #[error("plugin {}: cannot load: {message}", path.display())]
    Load { path: PathBuf, message: String },
    #[error("plugin {}: no entry symbol `logdaemon_listener_v2` (or `logdaemon_listener_v1`): not a logdaemon listener, or built for another ABI version; rebuild it against logdaemon-sdk", path.display())]
    NoSymbol { path: PathBuf },
    #[error("plugin {}: refused: {source}", path.display())]
    Handshake {
        path: PathBuf,
        source: abi::HandshakeError,
    },
}

/// The library file for a plugin reference.
pub fn resolve(r: &PluginRef, plugin_dir: Option<&Path>) -> Result<PathBuf, HostError> {
    match r {
        PluginRef::Path(p) => Ok(p.clone()),
        PluginRef::Builtin(name) => {
            let file = format!("liblogdaemon_listener_{}.so", name.replace('-', "_"));
            let dir = match plugin_dir {
                Some(d) => d.to_path_buf(),
                None => match std::env::var_os("LOGDAEMON_PLUGIN_DIR") {
                    Some(d) => PathBuf::from(d),
                    None => {
                        let exe = std::env::current_exe().ok();
                        default_dir(exe.as_deref().and_then(Path::parent), &file)
                    }
                },
            };
            let path = dir.join(file);
            if !path.exists() {
                return Err(HostError::BuiltinMissing {
                    name: name.clone(),
                    path,
                });
            }
            Ok(path)
        }
    }
}

/// Where built-in listeners are without `plugin_dir`: next to the binary
/// (a build tree: `target/release`), else in `lib/logdaemon/plugins` beside
/// the binary's `bin` (an install: `/usr/bin/logdaemon` finds
/// `/usr/lib/logdaemon/plugins`).
fn default_dir(exe_dir: Option<&Path>, file: &str) -> PathBuf {
    let Some(bin) = exe_dir else {
        return PathBuf::from(".");
    };
    let installed = bin.parent().map(|p| p.join("lib/logdaemon/plugins"));
    match installed {
        Some(d) if !bin.join(file).exists() && d.join(file).exists() => d,
        _ => bin.to_path_buf(),
    }
}

/// Refuses a library that another user could replace: the file, its
/// directory, or any directory above it (the rule of
/// [`logdaemon_sdk::trust`], which the `exec` listener applies to its
/// commands too).
pub fn check_permissions(path: &Path) -> Result<(), HostError> {
    trust::check_file(path).map_err(|u| match u {
        Untrusted::Writable { kind, target, mode } => HostError::Writable {
            path: path.to_path_buf(),
            what: kind.word(),
            target,
            mode,
        },
        Untrusted::Owner {
            kind,
            target,
            owner,
            me,
        } => HostError::Owner {
            path: path.to_path_buf(),
            what: kind.word(),
            target,
            owner,
            me,
        },
        Untrusted::NotAFile { .. } => HostError::NotAFile {
            path: path.to_path_buf(),
        },
        Untrusted::Io { target, source } => HostError::Io {
            path: target,
            source,
        },
    })
}

static LOADED: Mutex<Option<HashMap<PathBuf, &'static Plugin>>> = Mutex::new(None);

/// Vets, loads (RTLD_NOW, never unloaded) and handshakes a plugin library.
/// Loading the same file twice returns the same plugin.
pub fn load(path: &Path) -> Result<&'static Plugin, HostError> {
    let canon = std::fs::canonicalize(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => HostError::Missing {
            path: path.to_path_buf(),
        },
        _ => HostError::Io {
            path: path.to_path_buf(),
            source,
        },
    })?;
    let mut guard = LOADED.lock().unwrap_or_else(|e| e.into_inner());
    let map = guard.get_or_insert_with(HashMap::new);
    if let Some(p) = map.get(&canon) {
        return Ok(p);
    }
    check_permissions(&canon)?;
    // SAFETY: loading a library runs its initialisers; the file passed the
    // ownership and permission checks above.
    let lib = unsafe {
        libloading::os::unix::Library::open(Some(&canon), libc::RTLD_NOW | libc::RTLD_LOCAL)
    }
    .map_err(|e| HostError::Load {
        path: canon.clone(),
        message: e.to_string(),
    })?;
    let api = handshake(&lib, &canon)?;
    std::mem::forget(lib);
    tracing::info!(plugin = api.name, version = api.version, build = api.build, abi = api.abi_version(), path = %canon.display(), "plugin loaded");
    let plugin: &'static Plugin = Box::leak(Box::new(Plugin {
        path: canon.clone(),
        api,
    }));
    map.insert(canon, plugin);
    Ok(plugin)
}

/// Finds the entry symbol (version 2, else version 1) and checks the
/// descriptor it returns.
fn handshake(lib: &libloading::os::unix::Library, canon: &Path) -> Result<Checked, HostError> {
    let refused = |source| HostError::Handshake {
        path: canon.to_path_buf(),
        source,
    };
    // SAFETY: the symbol's type is fixed by the ABI version in its name.
    if let Ok(entry) = unsafe { lib.get::<EntryFn>(abi::ENTRY_SYMBOL) } {
        // SAFETY: calling the entry function is the handshake; the
        // descriptor is checked field by field before use.
        return unsafe { abi::check_descriptor(entry()) }.map_err(refused);
    }
    // SAFETY: as above, for the version-1 symbol and layout.
    let entry = unsafe { lib.get::<v1::EntryFnV1>(v1::ENTRY_SYMBOL_V1) }.map_err(|_| {
        HostError::NoSymbol {
            path: canon.to_path_buf(),
        }
    })?;
    // SAFETY: as above.
    unsafe { abi::check_descriptor_v1(entry()) }.map_err(refused)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn built_ins_are_found_next_to_the_binary_else_in_lib_logdaemon_plugins() {
        let d = tempfile::tempdir().unwrap();
        let (bin, lib) = (d.path().join("bin"), d.path().join("lib/logdaemon/plugins"));
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::create_dir_all(&lib).unwrap();
        let file = "liblogdaemon_listener_file.so";
        // Nowhere: the binary's directory, which the error then names.
        assert_eq!(default_dir(Some(&bin), file), bin);
        std::fs::write(lib.join(file), b"").unwrap();
        assert_eq!(default_dir(Some(&bin), file), lib, "installed layout");
        std::fs::write(bin.join(file), b"").unwrap();
        assert_eq!(default_dir(Some(&bin), file), bin, "a build tree wins");
        assert_eq!(default_dir(None, file), PathBuf::from("."));
    }

    #[test]
    fn refuses_group_writable_file_and_directory() {
        let d = tempfile::tempdir().unwrap();
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let f = d.path().join("libx.so");
        std::fs::write(&f, b"not a library").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o664)).unwrap();
        let e = check_permissions(&f).unwrap_err().to_string();
        assert!(
            e.contains("writable by group or others")
                && e.contains("chmod go-w")
                && e.contains("libx.so"),
            "{e}"
        );
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        check_permissions(&f).unwrap();
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = check_permissions(&f).unwrap_err().to_string();
        assert!(e.contains("directory"), "{e}");
    }

    #[test]
    fn refuses_a_writable_directory_further_up_and_allows_a_sticky_one() {
        let d = tempfile::tempdir().unwrap();
        let sub = d.path().join("a/b");
        std::fs::create_dir_all(&sub).unwrap();
        for p in [d.path(), &d.path().join("a"), &sub] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let f = sub.join("libx.so");
        std::fs::write(&f, b"x").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        check_permissions(&f).unwrap();
        let a = d.path().join("a");
        std::fs::set_permissions(&a, std::fs::Permissions::from_mode(0o775)).unwrap();
        let e = check_permissions(&f).unwrap_err().to_string();
        assert!(
            e.contains(&format!("directory {} is writable", a.display())) && e.contains("libx.so"),
            "{e}"
        );
        std::fs::set_permissions(&a, std::fs::Permissions::from_mode(0o1777)).unwrap();
        check_permissions(&f).unwrap();
    }

    #[test]
    fn refuses_a_file_that_is_not_a_library() {
        let d = tempfile::tempdir().unwrap();
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let f = d.path().join("libnot.so");
        std::fs::write(&f, b"not a library").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = load(&f).unwrap_err().to_string();
        assert!(e.contains("cannot load") && e.contains("libnot.so"), "{e}");
    }
}
