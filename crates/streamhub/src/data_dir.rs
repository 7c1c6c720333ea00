//! The data directory of `streamhub up`: private to its owner, and used by one process at
//! a time (two would write the same broker log and metadata store).

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::Path;

use anyhow::Context;

/// Name of the lock file inside the data directory; it holds the owner's pid.
pub const LOCK_FILE: &str = "streamhub.lock";

/// The data directory, locked for as long as this value lives.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

/// Makes the files this process creates private (umask 077), creates the data directory
/// (mode 0700; an existing one is narrowed to it) and takes an exclusive advisory lock on its lock file. Another process holding it is an error that
/// names that process.
pub fn lock(dir: &Path) -> anyhow::Result<DataDirLock> {
    #[cfg(unix)]
    // SAFETY: umask only sets the process's file-creation mask. Everything this process
    // writes (the broker's log, the metadata store) is then its owner's only.
    unsafe {
        libc::umask(0o077);
    }
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot restrict the data directory {}", dir.display()))?;
    }
    let path = dir.join(LOCK_FILE);
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    if !try_lock(&file).with_context(|| format!("cannot lock {}", path.display()))? {
        let mut owner = String::new();
        let _ = file.read_to_string(&mut owner);
        let owner = match owner.trim() {
            "" => "another process".to_owned(),
            pid => format!("another streamhub (pid {pid})"),
        };
        anyhow::bail!(
            "the data directory {} is in use by {owner}; stop it or choose another --data-dir",
            dir.display()
        );
    }
    file.set_len(0)?;
    file.rewind()?;
    writeln!(file, "{}", std::process::id())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(DataDirLock { _file: file })
}

/// An exclusive lock without waiting: `false` when another open file description holds it.
/// The kernel drops it when the process ends, however it ends.
#[cfg(unix)]
fn try_lock(file: &File) -> std::io::Result<bool> {
    use std::os::fd::AsRawFd;
    // SAFETY: flock only acts on the descriptor, which `file` keeps open.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(e)
    }
}

#[cfg(not(unix))]
fn try_lock(_file: &File) -> std::io::Result<bool> {
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_one_data_directory_is_refused_naming_the_owner() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let first = lock(&data).unwrap();
        let err = lock(&data).unwrap_err().to_string();
        assert!(err.contains("is in use by another streamhub"), "{err}");
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&data).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700);
        }
        drop(first);
        lock(&data).unwrap();
    }
}
