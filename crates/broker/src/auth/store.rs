//! The security file `<data_dir>/streamhub-security.json`: SCRAM credentials (salt,
//! StoredKey, ServerKey, iterations: never a password) and ACL bindings. Written like the
//! broker's metadata file: to a temporary file, synced, renamed over the old one.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::acl::AclBinding;
use super::scram::{ScramCredential, ScramMechanism};

pub const SECURITY_FILE: &str = "streamhub-security.json";

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SecurityFile {
    /// Key of the made-up salts shown for unknown users (see `ScramServer::decoy_salt`):
    /// stable, so that repeated attempts for one unknown user see one salt.
    #[serde(with = "hex_bytes")]
    pub decoy_key: Vec<u8>,
    pub credentials: BTreeMap<String, BTreeMap<ScramMechanism, ScramCredential>>,
    pub acls: Vec<AclBinding>,
}

impl SecurityFile {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(SECURITY_FILE)
    }

    pub fn load(dir: &Path) -> std::io::Result<Option<SecurityFile>> {
        match std::fs::read(Self::path(dir)) {
            Ok(raw) => serde_json::from_slice(&raw).map(Some).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: {e}", Self::path(dir).display()),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn store(&self, dir: &Path) -> std::io::Result<()> {
        let tmp = dir.join(format!("{SECURITY_FILE}.tmp"));
        let raw = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        {
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            // Derived keys let anyone holding them log in: readable by the broker's user only.
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut f = options.open(&tmp)?;
            f.write_all(&raw)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, Self::path(dir))?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.iter().map(|b| format!("{b:02x}")).collect::<String>())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        if s.len() % 2 != 0 {
            return Err(serde::de::Error::custom("odd hex length"));
        }
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(serde::de::Error::custom))
            .collect()
    }
}
