//! What a sandboxed plugin may touch. Everything is denied unless granted
//! here; a package's manifest lists what its component requests, and
//! loading fails when the grant does not cover the request.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder};

use crate::LoadError;

pub use crate::package::CAPABILITY_FORMS;

/// Access to a preopened directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirAccess {
    /// Read files and list directories.
    ReadOnly,
    /// Also create, write, rename and remove.
    ReadWrite,
}

/// Where a guest's stdout or stderr goes.
#[derive(Debug, Clone, Default)]
pub enum Output {
    /// Discarded (the default).
    #[default]
    Discard,
    /// The host process's own stream.
    Inherit,
    /// Kept in memory, readable through the [`OutputBuffer`].
    Capture(OutputBuffer),
}

/// Captured guest output: clone it, grant it, read it.
#[derive(Debug, Clone)]
pub struct OutputBuffer(MemoryOutputPipe);

impl OutputBuffer {
    /// A buffer keeping at most `capacity` bytes (writes beyond fail in the
    /// guest).
    pub fn new(capacity: usize) -> Self {
        Self(MemoryOutputPipe::new(capacity))
    }

    /// Everything written so far.
    pub fn contents(&self) -> Vec<u8> {
        self.0.contents().to_vec()
    }
}

#[derive(Debug, Clone)]
struct Preopen {
    host: PathBuf,
    guest: String,
    access: DirAccess,
}

/// The host's grant to a sandboxed plugin: deny-all until something is
/// added.
///
/// ```
/// use fidius_runtime::wasm::{Capabilities, DirAccess, Output};
/// let caps = Capabilities::none()
///     .dir("/srv/data", "/data", DirAccess::ReadOnly)
///     .env("LANG")
///     .stderr(Output::Inherit);
/// assert_eq!(caps.names(), ["dir:/data", "env:LANG", "stderr"]);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Capabilities {
    dirs: Vec<Preopen>,
    env: Vec<(String, Option<String>)>,
    stdout: Output,
    stderr: Output,
    clock: bool,
    random: bool,
    http: Option<EgressHook>,
}

/// An outbound HTTP request from a plugin, as the egress hook sees it. The
/// hook may change any part of it (rewrite the URL, add or remove headers)
/// before it is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EgressRequest {
    /// `GET`, `POST`, …
    pub method: String,
    /// The whole URL: `scheme://host[:port]/path?query`.
    pub url: String,
    /// Header names and values, in order (names lower-case).
    pub headers: Vec<(String, String)>,
}

impl EgressRequest {
    /// The URL's host (without port), if it has one.
    pub fn host(&self) -> Option<&str> {
        let rest = self.url.split_once("://")?.1;
        let authority = rest.split(['/', '?', '#']).next()?;
        let authority = authority.rsplit('@').next()?;
        if let Some(v6) = authority.strip_prefix('[') {
            return v6.split(']').next();
        }
        authority.split(':').next().filter(|h| !h.is_empty())
    }

    /// The value of header `name` (case-insensitive), if set.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Sets header `name` to `value`, replacing any value it had.
    pub fn set_header(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into().to_ascii_lowercase();
        self.headers.retain(|(n, _)| *n != name);
        self.headers.push((name, value.into()));
    }
}

/// The egress hook's verdict on a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Egress {
    /// Send it (as the hook left it).
    Allow,
    /// Refuse it: the plugin gets the `wasi:http` error
    /// `HTTP-request-denied`; the reason is logged (`tracing`, target
    /// `fidius::egress`).
    Deny(String),
}

/// The host's egress hook.
#[derive(Clone)]
pub(crate) struct EgressHook(pub(crate) Arc<dyn Fn(&mut EgressRequest) -> Egress + Send + Sync>);

impl std::fmt::Debug for EgressHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EgressHook")
    }
}

impl Capabilities {
    /// Nothing: no files, environment, arguments, stdio, wall clock,
    /// randomness, sockets or HTTP. A monotonic clock is always there.
    pub fn none() -> Self {
        Self::default()
    }

    /// Host directory `host` visible in the guest at `guest`.
    pub fn dir(
        mut self,
        host: impl AsRef<Path>,
        guest: impl Into<String>,
        access: DirAccess,
    ) -> Self {
        self.dirs.push(Preopen {
            host: host.as_ref().to_owned(),
            guest: guest.into(),
            access,
        });
        self
    }

    /// Environment variable `name`, with the host's value (if set).
    pub fn env(mut self, name: impl Into<String>) -> Self {
        self.env.push((name.into(), None));
        self
    }

    /// Environment variable `name` = `value`.
    pub fn env_value(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((name.into(), Some(value.into())));
        self
    }

    /// The guest's stdout.
    pub fn stdout(mut self, output: Output) -> Self {
        self.stdout = output;
        self
    }

    /// The guest's stderr.
    pub fn stderr(mut self, output: Output) -> Self {
        self.stderr = output;
        self
    }

    /// The real wall clock (without it the guest reads a clock stopped at
    /// the Unix epoch).
    pub fn wall_clock(mut self) -> Self {
        self.clock = true;
        self
    }

    /// Real randomness (without it the guest's `random` is a fixed,
    /// deterministic sequence).
    pub fn random(mut self) -> Self {
        self.random = true;
        self
    }

    /// Outbound HTTP through `wasi:http`, every request brokered by `hook`:
    /// it sees the method, URL and headers, may rewrite them, and allows or
    /// denies the request. There is no other way to grant HTTP. A denied
    /// request reaches the plugin as the `wasi:http` error
    /// `HTTP-request-denied`; without this grant every request is denied
    /// that way. Sockets stay closed either way: the host makes the
    /// connection.
    ///
    /// ```
    /// use fidius_runtime::wasm::{Capabilities, Egress};
    /// let caps = Capabilities::none().http(|request| match request.host() {
    ///     Some("api.example.com") => {
    ///         request.set_header("authorization", "Bearer from-the-host");
    ///         Egress::Allow
    ///     }
    ///     other => Egress::Deny(format!("{other:?} is not on the allow-list")),
    /// });
    /// assert_eq!(caps.names(), ["http"]);
    /// ```
    pub fn http(
        mut self,
        hook: impl Fn(&mut EgressRequest) -> Egress + Send + Sync + 'static,
    ) -> Self {
        self.http = Some(EgressHook(Arc::new(hook)));
        self
    }

    /// The egress hook, if HTTP is granted.
    pub(crate) fn egress(&self) -> Option<EgressHook> {
        self.http.clone()
    }

    /// The capability names this grant covers, in the manifest's form.
    pub fn names(&self) -> Vec<String> {
        let mut names = Vec::new();
        for d in &self.dirs {
            let prefix = match d.access {
                DirAccess::ReadOnly => "dir",
                DirAccess::ReadWrite => "dir-rw",
            };
            names.push(format!("{prefix}:{}", d.guest));
        }
        for (name, _) in &self.env {
            names.push(format!("env:{name}"));
        }
        if !matches!(self.stdout, Output::Discard) {
            names.push("stdout".into());
        }
        if !matches!(self.stderr, Output::Discard) {
            names.push("stderr".into());
        }
        if self.clock {
            names.push("clock".into());
        }
        if self.random {
            names.push("random".into());
        }
        if self.http.is_some() {
            names.push("http".into());
        }
        names
    }

    /// The requested capabilities this grant does not cover (a read-write
    /// directory covers a read-only request of the same path).
    ///
    /// # Errors
    /// [`LoadError::UnknownCapability`] for a name that is not one of
    /// [`CAPABILITY_FORMS`].
    pub fn missing(&self, requested: &[String]) -> Result<Vec<String>, LoadError> {
        let granted = self.names();
        let mut missing = Vec::new();
        for name in requested {
            check_name(name)?;
            let covered = granted.contains(name)
                || name
                    .strip_prefix("dir:")
                    .is_some_and(|p| granted.contains(&format!("dir-rw:{p}")));
            if !covered {
                missing.push(name.clone());
            }
        }
        Ok(missing)
    }

    /// The WASI context for one instance.
    pub(crate) fn wasi(&self, path: &Path) -> Result<WasiCtx, LoadError> {
        let mut b = WasiCtxBuilder::new();
        for d in &self.dirs {
            let perms = match d.access {
                DirAccess::ReadOnly => FsPerms::ReadOnly,
                DirAccess::ReadWrite => FsPerms::ReadWrite,
            };
            b.preopened_dir(&d.host, &d.guest, perms)
                .map_err(|e| LoadError::Wasm {
                    path: path.to_owned(),
                    detail: format!("cannot preopen `{}`: {e}", d.host.display()),
                })?;
        }
        for (name, value) in &self.env {
            match value {
                Some(v) => {
                    b.env(name, v);
                }
                None => {
                    if let Ok(v) = std::env::var(name) {
                        b.env(name, v);
                    }
                }
            }
        }
        match &self.stdout {
            Output::Discard => {}
            Output::Inherit => {
                b.inherit_stdout();
            }
            Output::Capture(buf) => {
                b.stdout(buf.0.clone());
            }
        }
        match &self.stderr {
            Output::Discard => {}
            Output::Inherit => {
                b.inherit_stderr();
            }
            Output::Capture(buf) => {
                b.stderr(buf.0.clone());
            }
        }
        if !self.clock {
            b.wall_clock(StoppedClock);
        }
        if !self.random {
            b.secure_random(wasmtime_wasi::Deterministic::new(vec![42; 32]));
            b.insecure_random(wasmtime_wasi::Deterministic::new(vec![7; 32]));
            b.insecure_random_seed(0);
        }
        // Sockets and name lookups stay denied: WasiCtxBuilder's default
        // address check refuses every address.
        b.allow_ip_name_lookup(false);
        Ok(b.build())
    }
}

/// Checks a requested capability's form.
pub(crate) fn check_name(name: &str) -> Result<(), LoadError> {
    if crate::package::is_capability(name) {
        Ok(())
    } else {
        Err(LoadError::UnknownCapability {
            name: name.to_owned(),
            expected: CAPABILITY_FORMS,
        })
    }
}

struct StoppedClock;

impl wasmtime_wasi::HostWallClock for StoppedClock {
    fn resolution(&self) -> std::time::Duration {
        std::time::Duration::from_secs(1)
    }

    fn now(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }
}
