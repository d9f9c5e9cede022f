//! Known devices on this computer (DESIGN §4.11): this device's long-term key, and the other
//! devices whose safety code this person compared once and named. Both live under
//! `$XDG_DATA_HOME/sotto/` (default `~/.local/share/sotto/`):
//!
//! - `device-key`: this device's Ed25519 seed, one line of base64url, mode 0600. Made on first
//!   use and never replaced: a file that cannot be read or is not a key stops the call with an
//!   error saying so (replacing it would make this device a stranger to everyone who knows it).
//! - `known-devices.json`: `{"version":1,"devices":[{"name":..,"key":b64u,"added":unix}]}`,
//!   mode 0600, written whole to a temporary file and renamed over the old one.
//!
//! Nothing here is touched in incognito mode.

use crate::ClientError;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sotto_e2ee::{DeviceId, DeviceKey};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

const KEY_FILE: &str = "device-key";
const KNOWN_FILE: &str = "known-devices.json";
/// A name for a device: as long as a `hello` name, and as clean.
pub const MAX_DEVICE_NAME: usize = sotto_proto::MAX_NAME;

/// This computer's Sotto data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir(PathBuf);

impl DataDir {
    /// `$XDG_DATA_HOME/sotto`, else `$HOME/.local/share/sotto` (the XDG base directory rules:
    /// a relative `XDG_DATA_HOME` is ignored).
    pub fn from_env() -> Result<Self, ClientError> {
        let xdg = std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute());
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute());
        match (xdg, home) {
            (Some(base), _) => Ok(Self(base.join("sotto"))),
            (None, Some(home)) => Ok(Self(home.join(".local/share/sotto"))),
            (None, None) => Err(ClientError::DataDir(
                "neither XDG_DATA_HOME nor HOME is set to an absolute path: set one, or use \
                 --incognito"
                    .into(),
            )),
        }
    }

    /// The directory at `path` (tests, or an operator's choice).
    pub fn at(path: impl Into<PathBuf>) -> Self {
        Self(path.into())
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Makes the directory (mode 0700) if it is not there.
    fn ensure(&self) -> Result<(), ClientError> {
        if self.0.is_dir() {
            return Ok(());
        }
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.0)
            .map_err(|e| ClientError::DataDir(format!("cannot make {}: {e}", self.0.display())))
    }

    /// This device's key: read from `device-key`, or made and written there (mode 0600) if
    /// there is none. Never replaces a file that is there.
    pub fn device_key(&self) -> Result<DeviceKey, ClientError> {
        let path = self.0.join(KEY_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => read_key(&path, &Zeroizing::new(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.ensure()?;
                let key = DeviceKey::generate().map_err(|e| ClientError::Crypto(e.to_string()))?;
                let line = Zeroizing::new(format!("{}\n", URL_SAFE_NO_PAD.encode(*key.seed())));
                // Written whole under a name of its own, then linked into place: another
                // process starting at the same moment never reads a half-written key, and a
                // key it put there first is kept (the link fails), not replaced.
                let unique: String = key.id().as_bytes()[..6]
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                let temp = self.0.join(format!(".{KEY_FILE}.{unique}.new"));
                let written = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&temp)
                    .and_then(|mut f| f.write_all(line.as_bytes()).and_then(|()| f.sync_all()))
                    .and_then(|()| std::fs::hard_link(&temp, &path));
                let _ = std::fs::remove_file(&temp);
                match written {
                    Ok(()) => Ok(key),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => self.device_key(),
                    Err(e) => Err(ClientError::DataDir(format!(
                        "cannot write this device's key to {}: {e}",
                        path.display()
                    ))),
                }
            }
            Err(e) => Err(ClientError::DataDir(format!(
                "cannot read this device's key {}: {e} (it is never replaced: fix its \
                 permissions, or use --incognito)",
                path.display()
            ))),
        }
    }

    /// The devices this person verified.
    pub fn known_devices(&self) -> Result<KnownDevices, ClientError> {
        let path = self.0.join(KNOWN_FILE);
        let devices = match std::fs::read(&path) {
            Ok(bytes) => parse_known(&path, &bytes)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => {
                return Err(ClientError::DataDir(format!(
                    "cannot read {}: {e}",
                    path.display()
                )));
            }
        };
        Ok(KnownDevices {
            dir: self.clone(),
            devices,
        })
    }
}

/// The key in `device-key`'s bytes; anything else is an error that names the file.
fn read_key(path: &Path, bytes: &[u8]) -> Result<DeviceKey, ClientError> {
    let corrupt = || {
        ClientError::DataDir(format!(
            "{} is not a Sotto device key (damaged?). It is never replaced on its own: move it \
             away to make a new one (people who verified this device will see a new one), or \
             use --incognito",
            path.display()
        ))
    };
    let text = std::str::from_utf8(bytes).map_err(|_| corrupt())?;
    let text = text.strip_suffix('\n').unwrap_or(text);
    let seed = Zeroizing::new(URL_SAFE_NO_PAD.decode(text).map_err(|_| corrupt())?);
    let seed: &[u8; 32] = seed.as_slice().try_into().map_err(|_| corrupt())?;
    Ok(DeviceKey::from_seed(seed))
}

/// The file as stored.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KnownFile {
    version: u32,
    devices: Vec<StoredDevice>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredDevice {
    name: String,
    key: String,
    added: u64,
}

fn parse_known(path: &Path, bytes: &[u8]) -> Result<Vec<KnownDevice>, ClientError> {
    let corrupt = |why: String| {
        ClientError::DataDir(format!(
            "{} is damaged ({why}); it is left as it is: move it away to start a new list",
            path.display()
        ))
    };
    let file: KnownFile = serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
    if file.version != 1 {
        return Err(corrupt(format!("version {} is not 1", file.version)));
    }
    file.devices
        .into_iter()
        .map(|d| {
            let key = URL_SAFE_NO_PAD
                .decode(&d.key)
                .ok()
                .and_then(|k| DeviceId::from_slice(&k).ok())
                .ok_or_else(|| corrupt(format!("the key of {:?} is not a device key", d.name)))?;
            let name = device_name(&d.name).map_err(corrupt)?;
            Ok(KnownDevice {
                name,
                key,
                added: d.added,
            })
        })
        .collect()
}

/// A name a person gives a device: what a `hello` name may be (at most 64 bytes, no control
/// characters, no space at either end), and not empty.
pub fn device_name(text: &str) -> Result<String, String> {
    if text.len() > MAX_DEVICE_NAME {
        return Err(format!(
            "a device's name is at most {MAX_DEVICE_NAME} bytes"
        ));
    }
    sotto_proto::clean_name(text)
        .filter(|clean| clean == text && !clean.is_empty())
        .ok_or_else(|| {
            "a device's name has no control characters and does not start or end with a space"
                .into()
        })
}

/// One device this person verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownDevice {
    /// What they called it.
    pub name: String,
    /// Its public key.
    pub key: DeviceId,
    /// When (seconds since 1970).
    pub added: u64,
}

impl KnownDevice {
    /// The start of its key, to tell devices apart in a list (`a1b2 c3d4 e5f6 0718`).
    pub fn fingerprint(&self) -> String {
        self.key.as_bytes()[..8]
            .chunks(2)
            .map(|c| format!("{:02x}{:02x}", c[0], c[1]))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The devices this person verified, as last read from (or written to) the data directory.
#[derive(Debug, Clone)]
pub struct KnownDevices {
    dir: DataDir,
    devices: Vec<KnownDevice>,
}

impl KnownDevices {
    /// All of them, in the order they were added.
    pub fn list(&self) -> &[KnownDevice] {
        &self.devices
    }

    /// The name this person gave the device with `key`, if they verified it.
    pub fn name_of(&self, key: &DeviceId) -> Option<&str> {
        self.devices
            .iter()
            .find(|d| &d.key == key)
            .map(|d| d.name.as_str())
    }

    /// Stores `key` under `name` (a device verified again gets the new name). A name already
    /// given to another device is refused: forget that one first. Reads the file again first,
    /// so that another call's changes are kept.
    pub fn remember(&mut self, name: &str, key: DeviceId, now: u64) -> Result<(), ClientError> {
        let name = device_name(name).map_err(ClientError::DataDir)?;
        self.devices = self.dir.known_devices()?.devices;
        if self.devices.iter().any(|d| d.name == name && d.key != key) {
            return Err(ClientError::DataDir(format!(
                "{name:?} already names another device: choose another name, or forget that \
                 one first (sotto known --forget {name:?})"
            )));
        }
        self.devices.retain(|d| d.key != key);
        self.devices.push(KnownDevice {
            name,
            key,
            added: now,
        });
        self.save()
    }

    /// Forgets the device called `name`; false if there is none.
    pub fn forget(&mut self, name: &str) -> Result<bool, ClientError> {
        self.devices = self.dir.known_devices()?.devices;
        let before = self.devices.len();
        self.devices.retain(|d| d.name != name);
        if self.devices.len() == before {
            return Ok(false);
        }
        self.save()?;
        Ok(true)
    }

    /// Writes the whole list to a temporary file (mode 0600), then renames it over the old one:
    /// a crash leaves the old list or the new one, never half of one.
    fn save(&self) -> Result<(), ClientError> {
        self.dir.ensure()?;
        let file = KnownFile {
            version: 1,
            devices: self
                .devices
                .iter()
                .map(|d| StoredDevice {
                    name: d.name.clone(),
                    key: URL_SAFE_NO_PAD.encode(d.key.as_bytes()),
                    added: d.added,
                })
                .collect(),
        };
        let path = self.dir.0.join(KNOWN_FILE);
        let temp = self
            .dir
            .0
            .join(format!(".{KNOWN_FILE}.{}", std::process::id()));
        let fail = |e: std::io::Error| {
            ClientError::DataDir(format!("cannot write {}: {e}", path.display()))
        };
        let mut json = serde_json::to_vec_pretty(&file)
            .map_err(|e| fail(std::io::Error::other(e.to_string())))?;
        json.push(b'\n');
        let _ = std::fs::remove_file(&temp);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)
            .map_err(fail)?;
        f.write_all(&json)
            .and_then(|()| f.sync_all())
            .map_err(fail)?;
        // The mode of a file made before: kept private whatever the umask did.
        std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(0o600)).map_err(fail)?;
        std::fs::rename(&temp, &path).map_err(fail)
    }
}

/// What a call needs of known devices: this device's key, to sign each pair's transcript, and
/// the devices this person verified, to recognise them and add to. None of it in incognito.
pub struct ThisDevice {
    /// Signs each pair's transcript (`identity`).
    pub key: DeviceKey,
    /// Looked up for each peer's identity; `/verify` adds to it.
    pub known: KnownDevices,
}

impl ThisDevice {
    /// This device's key (made on first use) and its known devices, from `dir`.
    pub fn open(dir: &DataDir) -> Result<Self, ClientError> {
        Ok(Self {
            key: dir.device_key()?,
            known: dir.known_devices()?,
        })
    }
}

/// The key stays out of logs: only how many devices are known is shown.
impl std::fmt::Debug for ThisDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ThisDevice({} known)", self.known.devices.len())
    }
}

/// Seconds since 1970, for `added`.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> DataDir {
        let dir = std::env::temp_dir().join(format!(
            "sotto-known-{}-{tag}-{}",
            std::process::id(),
            unix_now()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        DataDir::at(dir.join("sotto"))
    }

    #[test]
    fn callers_making_the_key_at_the_same_moment_all_get_the_one_key_whole() {
        // Several `sotto` processes started together on a new machine: none reads a
        // half-written key (that would look damaged and stop the call), all end with one key.
        for round in 0..20 {
            let dir = temp_dir(&format!("race-{round}"));
            let ids: Vec<_> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..6)
                    .map(|_| s.spawn(|| dir.device_key().map(|k| k.id())))
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            let first = ids[0].clone().expect("a key");
            for id in ids {
                assert_eq!(id.expect("a whole key"), first);
            }
            let names: Vec<_> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert_eq!(
                names,
                [std::ffi::OsString::from(KEY_FILE)],
                "no temporary file left"
            );
        }
    }

    #[test]
    fn the_device_key_is_made_once_private_and_read_back_the_same() {
        let dir = temp_dir("key");
        let first = dir.device_key().unwrap().id();
        let path = dir.path().join(KEY_FILE);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
        let dir_mode = std::fs::metadata(dir.path()).unwrap().permissions().mode();
        assert_eq!(dir_mode & 0o777, 0o700, "{dir_mode:o}");
        assert_eq!(dir.device_key().unwrap().id(), first);
        let _ = std::fs::remove_dir_all(dir.path());
    }

    #[test]
    fn a_damaged_device_key_is_an_error_and_is_never_replaced() {
        let dir = temp_dir("damaged");
        dir.ensure().unwrap();
        let path = dir.path().join(KEY_FILE);
        for damaged in [&b"not a key\n"[..], b"", &[0xff, 0xfe], &[b'A'; 44]] {
            std::fs::write(&path, damaged).unwrap();
            match dir.device_key() {
                Err(ClientError::DataDir(why)) => {
                    assert!(why.contains("is not a Sotto device key"), "{why}")
                }
                other => panic!("{:?}", other.map(|k| k.id())),
            }
            assert_eq!(std::fs::read(&path).unwrap(), damaged, "left as it was");
        }
        let _ = std::fs::remove_dir_all(dir.path());
    }

    #[test]
    fn known_devices_are_stored_renamed_refused_when_the_name_is_taken_and_forgotten() {
        let dir = temp_dir("known");
        let (a, b) = (
            DeviceKey::generate().unwrap().id(),
            DeviceKey::generate().unwrap().id(),
        );
        let mut known = dir.known_devices().unwrap();
        assert!(known.list().is_empty());
        known.remember("Ada's laptop", a, 1).unwrap();
        // Another process reading the directory sees it; its own change keeps this one.
        let mut other = dir.known_devices().unwrap();
        assert_eq!(other.name_of(&a), Some("Ada's laptop"));
        other.remember("Bea", b, 2).unwrap();
        known.remember("Ada", a, 3).unwrap();
        let names: Vec<_> = dir
            .known_devices()
            .unwrap()
            .list()
            .iter()
            .map(|d| d.name.clone())
            .collect();
        assert_eq!(names, ["Bea", "Ada"]);
        assert!(matches!(
            known.remember("Bea", a, 4),
            Err(ClientError::DataDir(why)) if why.contains("already names another device")
        ));
        assert!(matches!(
            known.remember(" x", a, 4),
            Err(ClientError::DataDir(_))
        ));
        assert!(known.forget("Bea").unwrap());
        assert!(!known.forget("Bea").unwrap());
        let after = dir.known_devices().unwrap();
        assert_eq!(after.name_of(&b), None);
        assert_eq!(after.name_of(&a), Some("Ada"));
        let mode = std::fs::metadata(dir.path().join(KNOWN_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
        let _ = std::fs::remove_dir_all(dir.path());
    }

    #[test]
    fn a_damaged_list_is_an_error_naming_the_file() {
        let dir = temp_dir("list");
        dir.ensure().unwrap();
        for damaged in [
            "{",
            r#"{"version":2,"devices":[]}"#,
            r#"{"version":1,"devices":[{"name":"x","key":"AAAA","added":0}]}"#,
            r#"{"version":1,"devices":[],"more":1}"#,
        ] {
            std::fs::write(dir.path().join(KNOWN_FILE), damaged).unwrap();
            assert!(
                matches!(dir.known_devices(), Err(ClientError::DataDir(why)) if why.contains("is damaged")),
                "{damaged}"
            );
        }
        let _ = std::fs::remove_dir_all(dir.path());
    }
}
