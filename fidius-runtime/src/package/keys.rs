//! Ed25519 keys, key ids and detached signatures, and their text files.
//!
//! All three files are small TOML documents (see `docs/src/fidpkg.md`):
//!
//! ```toml
//! # fidius public key
//! algorithm = "ed25519"
//! key_id = "3f2a9c0e5d7b1164"
//! public_key = "…64 hex digits…"
//! ```
//!
//! A secret key file has `secret_key` instead of `public_key`; a signature
//! file has `signature` (128 hex digits). The key id is the first 8 bytes of
//! the SHA-256 of the public key, in hex.

use std::path::Path;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::PackageError;

/// The only signature algorithm.
pub const ALGORITHM: &str = "ed25519";

/// A public key that signatures are checked against.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    key: VerifyingKey,
    id: String,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", self.id)
    }
}

/// A secret signing key. Its `Debug` output never shows the key.
pub struct SecretKey {
    key: SigningKey,
    id: String,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey({}, …)", self.id)
    }
}

/// A detached signature: which key, and the signature bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// Id of the key that made it.
    pub key_id: String,
    signature: ed25519_dalek::Signature,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    algorithm: String,
    key_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    public_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret_key: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignatureFile {
    algorithm: String,
    key_id: String,
    signature: String,
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    unhex_vec(text)?.try_into().ok()
}

/// The bytes of `text`, hex digits in pairs (either case).
pub(crate) fn unhex_vec(text: &str) -> Option<Vec<u8>> {
    let text = text.as_bytes();
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.chunks(2)
        .map(|pair| {
            let digit = |c: u8| (c as char).to_digit(16);
            Some((digit(pair[0])? * 16 + digit(pair[1])?) as u8)
        })
        .collect()
}

fn key_id(key: &VerifyingKey) -> String {
    hex(&Sha256::digest(key.as_bytes())[..8])
}

fn bad_key(what: &str, detail: impl Into<String>) -> PackageError {
    PackageError::MalformedKey {
        what: what.to_owned(),
        detail: detail.into(),
    }
}

fn parse_key_file(what: &str, text: &str) -> Result<KeyFile, PackageError> {
    // `message()` only: the full error quotes the offending line, which
    // could be the secret key.
    let file: KeyFile = toml::from_str(text).map_err(|e| bad_key(what, e.message()))?;
    if file.algorithm != ALGORITHM {
        return Err(bad_key(
            what,
            format!(
                "algorithm: expected `{ALGORITHM}`, found `{}`",
                file.algorithm
            ),
        ));
    }
    Ok(file)
}

/// The 32 key bytes of field `name` (the other kind of key file has
/// `other_kind` instead).
fn key_field(
    what: &str,
    value: Option<String>,
    name: &str,
    other_kind: &str,
) -> Result<[u8; 32], PackageError> {
    let hex = value.ok_or_else(|| {
        bad_key(
            what,
            format!("missing `{name}` (is this a {other_kind} key file?)"),
        )
    })?;
    unhex::<32>(&hex).ok_or_else(|| bad_key(what, format!("`{name}` must be 64 hex digits")))
}

/// The key's id, checked against the file's `key_id`.
fn checked_id(what: &str, stated: &str, key: &VerifyingKey) -> Result<String, PackageError> {
    let id = key_id(key);
    if stated != id {
        return Err(bad_key(
            what,
            format!("`key_id` is {stated} but the key's id is {id}"),
        ));
    }
    Ok(id)
}

/// Reads a key file's text.
fn read_key_text(path: &Path) -> Result<String, PackageError> {
    std::fs::read_to_string(path).map_err(|e| PackageError::io(path, e))
}

impl PublicKey {
    /// Parses a public key file's text; `what` names it in errors.
    ///
    /// # Errors
    /// [`PackageError::MalformedKey`].
    pub fn parse(what: &str, text: &str) -> Result<Self, PackageError> {
        let file = parse_key_file(what, text)?;
        let bytes = key_field(what, file.public_key, "public_key", "secret")?;
        let key = VerifyingKey::from_bytes(&bytes)
            .map_err(|_| bad_key(what, "`public_key` is not a valid Ed25519 key"))?;
        let id = checked_id(what, &file.key_id, &key)?;
        Ok(Self { key, id })
    }

    /// Reads a public key file.
    ///
    /// # Errors
    /// [`PackageError::Io`] or [`PackageError::MalformedKey`].
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, PackageError> {
        let path = path.as_ref();
        Self::parse(&path.display().to_string(), &read_key_text(path)?)
    }

    /// The key id (16 hex digits).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The public key file's text.
    pub fn to_file_text(&self) -> String {
        let file = KeyFile {
            algorithm: ALGORITHM.into(),
            key_id: self.id.clone(),
            public_key: Some(hex(self.key.as_bytes())),
            secret_key: None,
        };
        format!(
            "# fidius public key: give this to hosts that should trust your packages\n{}",
            toml::to_string(&file).unwrap_or_default()
        )
    }

    /// Checks `signature` over `message` with this key (strict Ed25519).
    pub(crate) fn verifies(&self, message: &[u8], signature: &Signature) -> bool {
        self.key
            .verify_strict(message, &signature.signature)
            .is_ok()
    }
}

impl SecretKey {
    /// A new random key pair.
    ///
    /// # Errors
    /// [`PackageError::Random`] when the OS has no randomness to give.
    pub fn generate() -> Result<Self, PackageError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| PackageError::Random {
            detail: e.to_string(),
        })?;
        Ok(Self::from_bytes(&seed))
    }

    /// The key for a 32-byte Ed25519 seed (for keys kept elsewhere, and
    /// deterministic tests).
    pub fn from_bytes(seed: &[u8; 32]) -> Self {
        let key = SigningKey::from_bytes(seed);
        let id = key_id(&key.verifying_key());
        Self { key, id }
    }

    /// Parses a secret key file's text; `what` names it in errors (never
    /// the key).
    ///
    /// # Errors
    /// [`PackageError::MalformedKey`].
    pub fn parse(what: &str, text: &str) -> Result<Self, PackageError> {
        let file = parse_key_file(what, text)?;
        let bytes = key_field(what, file.secret_key, "secret_key", "public")?;
        let key = SigningKey::from_bytes(&bytes);
        let id = checked_id(what, &file.key_id, &key.verifying_key())?;
        Ok(Self { key, id })
    }

    /// Reads a secret key file.
    ///
    /// # Errors
    /// [`PackageError::Io`] or [`PackageError::MalformedKey`].
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, PackageError> {
        let path = path.as_ref();
        Self::parse(&path.display().to_string(), &read_key_text(path)?)
    }

    /// The key id (16 hex digits).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey {
            key: self.key.verifying_key(),
            id: self.id.clone(),
        }
    }

    /// The secret key file's text. Keep it private (mode 0600).
    pub fn to_file_text(&self) -> String {
        let file = KeyFile {
            algorithm: ALGORITHM.into(),
            key_id: self.id.clone(),
            public_key: None,
            secret_key: Some(hex(self.key.as_bytes())),
        };
        format!(
            "# fidius SECRET key: keep private; hosts need the .pub file\n{}",
            toml::to_string(&file).unwrap_or_default()
        )
    }

    /// Signs `message`.
    pub fn sign(&self, message: &[u8]) -> Signature {
        Signature {
            key_id: self.id.clone(),
            signature: self.key.sign(message),
        }
    }
}

impl Signature {
    /// Parses a signature file's text.
    ///
    /// # Errors
    /// [`PackageError::MalformedSignature`].
    pub fn parse(text: &str) -> Result<Self, PackageError> {
        let bad = |detail: String| PackageError::MalformedSignature { detail };
        let file: SignatureFile = toml::from_str(text).map_err(|e| bad(e.message().to_owned()))?;
        if file.key_id.len() != 16 || !file.key_id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("`key_id` must be 16 hex digits".into()));
        }
        if file.algorithm != ALGORITHM {
            return Err(bad(format!(
                "algorithm: expected `{ALGORITHM}`, found `{}`",
                file.algorithm
            )));
        }
        let bytes = unhex::<64>(&file.signature)
            .ok_or_else(|| bad("`signature` must be 128 hex digits".into()))?;
        Ok(Self {
            key_id: file.key_id,
            signature: ed25519_dalek::Signature::from_bytes(&bytes),
        })
    }

    /// The signature file's text.
    pub fn to_file_text(&self) -> String {
        let file = SignatureFile {
            algorithm: ALGORITHM.into(),
            key_id: self.key_id.clone(),
            signature: hex(&self.signature.to_bytes()),
        };
        toml::to_string(&file).unwrap_or_default()
    }
}
