//! Packaging a Python plugin (`cargo fidius package --python DIR`): its
//! files as a `python` artifact, the plugins it declares read by running
//! `python3` on it with the SDK this binary embeds.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

/// The SDK Python plugins import as `fidius`.
const SDK: &str = include_str!("../../../fidius-runtime/python/fidius/__init__.py");

/// Prints the plugins a module declares, as JSON (run by `python3`).
const DECLARATIONS: &str = r#"
import importlib.util, json, sys
sys.path.insert(0, sys.argv[1])
sys.path.insert(0, sys.argv[2])
spec = importlib.util.spec_from_file_location("_fidius_packaged", sys.argv[3])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
import fidius
found = []
for value in vars(module).values():
    declared = getattr(value, fidius.PLUGIN_ATTRIBUTE, None)
    if isinstance(value, type) and isinstance(declared, dict) and value.__module__ == module.__name__:
        found.append(declared)
print(json.dumps(found))
"#;

/// A Python plugin directory: what its `pyproject.toml` says.
pub(crate) struct PythonPlugin {
    pub(crate) dir: PathBuf,
    pub(crate) name: String,
    pub(crate) version: String,
    /// The module hosts load, `<module>.py` in `dir`.
    pub(crate) module: String,
}

/// One `@fidius.plugin` declaration.
#[derive(serde::Deserialize)]
pub(crate) struct Declared {
    pub(crate) name: String,
    pub(crate) interface: String,
    pub(crate) version: u32,
    pub(crate) hash: u64,
}

impl PythonPlugin {
    /// Reads `DIR/pyproject.toml`: `[project] name` and `version`,
    /// `[tool.fidius] module`.
    pub(crate) fn read(dir: &Path) -> anyhow::Result<Self> {
        let file = dir.join("pyproject.toml");
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("failed to read `{}`", file.display()))?;
        let doc: toml::Table = toml::from_str(&text)
            .with_context(|| format!("`{}` is not valid TOML", file.display()))?;
        let field = |table: &str, key: &str| -> anyhow::Result<String> {
            let mut value = &toml::Value::Table(doc.clone());
            for part in table.split('.').chain([key]) {
                value = value.get(part).with_context(|| {
                    format!("`{}` has no `{key}` in `[{table}]`", file.display())
                })?;
            }
            value
                .as_str()
                .map(str::to_owned)
                .with_context(|| format!("`{}`: `[{table}] {key}` is not a string", file.display()))
        };
        let module = field("tool.fidius", "module")?;
        let module = module
            .strip_suffix(".py")
            .filter(|m| !m.is_empty() && !m.contains(['/', '\\']))
            .with_context(|| {
                format!(
                    "`{}`: `[tool.fidius] module` must name a `.py` file in the directory, found `{module}`",
                    file.display()
                )
            })?
            .to_owned();
        Ok(Self {
            dir: dir.to_owned(),
            name: field("project", "name")?,
            version: field("project", "version")?,
            module,
        })
    }

    /// The files to pack: everything under the directory but tests,
    /// bytecode caches, hidden files and build or virtual-environment
    /// directories.
    pub(crate) fn files(&self) -> anyhow::Result<Vec<(PathBuf, Vec<u8>)>> {
        fn walk(root: &Path, rel: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) -> anyhow::Result<()> {
            let dir = root.join(rel);
            let entries = std::fs::read_dir(&dir)
                .with_context(|| format!("failed to read `{}`", dir.display()))?;
            for entry in entries {
                let entry = entry?;
                let name = entry.file_name().to_string_lossy().into_owned();
                let skip = name.starts_with('.')
                    || ["__pycache__", "build", "dist", "venv", "tests", "test"]
                        .contains(&name.as_str())
                    || name.starts_with("test_")
                    || name.ends_with("_test.py")
                    || name.ends_with(".pyc");
                if skip {
                    continue;
                }
                let path = rel.join(&name);
                let kind = entry.file_type()?;
                if kind.is_dir() {
                    walk(root, &path, out)?;
                } else if kind.is_file() {
                    let data = std::fs::read(root.join(&path)).with_context(|| {
                        format!("failed to read `{}`", root.join(&path).display())
                    })?;
                    out.push((path, data));
                } else {
                    bail!(
                        "`{}` is neither a file nor a directory; a Python plugin packs only those",
                        root.join(&path).display()
                    );
                }
            }
            Ok(())
        }
        let mut files = Vec::new();
        walk(&self.dir, Path::new(""), &mut files)?;
        if !files
            .iter()
            .any(|(p, _)| *p == Path::new(&format!("{}.py", self.module)))
        {
            bail!("`{}` has no `{}.py`", self.dir.display(), self.module);
        }
        Ok(files)
    }

    /// The plugins the module declares, by running it with `python3` and
    /// the embedded SDK.
    pub(crate) fn declared(&self, scratch: &Path) -> anyhow::Result<Vec<Declared>> {
        let sdk = scratch.join("sdk");
        std::fs::create_dir_all(sdk.join("fidius"))?;
        std::fs::write(sdk.join("fidius/__init__.py"), SDK)?;
        let out = std::process::Command::new("python3")
            .arg("-B")
            .arg("-c")
            .arg(DECLARATIONS)
            .arg(&sdk)
            .arg(&self.dir)
            .arg(self.dir.join(format!("{}.py", self.module)))
            .output()
            .context("failed to run `python3` (needed to read a Python plugin's declarations)")?;
        if !out.status.success() {
            bail!(
                "importing `{}.py` failed:\n{}",
                self.module,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        serde_json::from_slice(&out.stdout).context("`python3` printed something unexpected")
    }
}
