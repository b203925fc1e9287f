//! `cargo fidius new plugin --lang js|c|python-wasm|go`: a guest project
//! (`fidius.toml`, the interface's WIT, a skeleton implementing every
//! method, a README with the build command, and a host-side test crate that
//! loads the built component through fidius).
//!
//! The skeletons come from the interface's WIT (the functions of its
//! interface, their types), so they always match what the component must
//! export; C's also from the header `wit-bindgen c` writes, whose
//! prototypes are exactly what C must define.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context as _, bail};
use wit_parser::{Function, Handle, Resolve, Type, TypeDefKind, TypeOwner};

use super::Lang;

/// The interface's functions and types, read from its WIT.
struct Api {
    resolve: Resolve,
    /// The interface's WIT name (`polyglot`).
    iface: String,
    /// The WIT package (`fidius:polyglot@1.0.0`).
    package: String,
    funcs: Vec<Function>,
    /// The methods of the interface's resources (`[method]count-stream.next`).
    methods: Vec<Function>,
    /// The resources the interface returns (`count-stream`).
    streams: Vec<String>,
    /// Whether `create` takes a typed configuration.
    typed_config: bool,
    /// The type of `create`'s configuration (`list<u8>` when untyped).
    create_config: Type,
}

impl Api {
    fn read(wit: &str, trait_name: &str) -> anyhow::Result<Self> {
        let mut resolve = Resolve::default();
        let package = resolve
            .push_str("interface.wit", wit)
            .context("failed to parse the interface's WIT")?;
        let iface_name = fidius_runtime::wit_name(trait_name);
        let pkg = &resolve.packages[package];
        let package_name = pkg.name.to_string();
        let iface = *pkg
            .interfaces
            .get(&iface_name)
            .with_context(|| format!("the WIT has no interface `{iface_name}`"))?;
        let plugin = *pkg
            .interfaces
            .get("plugin")
            .context("the WIT has no `plugin` interface")?;
        let create_config = resolve.interfaces[plugin]
            .functions
            .get("create")
            .and_then(|f| f.params.get(1))
            .map(|p| p.ty)
            .context("the WIT's `plugin.create` has no configuration parameter")?;
        let typed_config = !is_bytes(&resolve, &create_config);
        let funcs: Vec<Function> = resolve.interfaces[iface]
            .functions
            .values()
            .filter(|f| matches!(f.kind, wit_parser::FunctionKind::Freestanding))
            .cloned()
            .collect();
        let methods: Vec<Function> = resolve.interfaces[iface]
            .functions
            .values()
            .filter(|f| !matches!(f.kind, wit_parser::FunctionKind::Freestanding))
            .cloned()
            .collect();
        let streams = resolve.interfaces[iface]
            .types
            .iter()
            .filter(|(_, id)| matches!(resolve.types[**id].kind, TypeDefKind::Resource))
            .map(|(name, _)| name.clone())
            .collect();
        Ok(Self {
            resolve,
            iface: iface_name,
            package: package_name,
            funcs,
            methods,
            streams,
            typed_config,
            create_config,
        })
    }

    /// The type of `plugin.create`'s configuration.
    fn create_params(&self) -> Type {
        self.create_config
    }

    /// The resource a function returns, if it returns a stream.
    fn returned_stream(&self, f: &Function) -> Option<String> {
        let Type::Id(id) = f.result? else {
            return None;
        };
        let handle = match &self.resolve.types[id].kind {
            TypeDefKind::Handle(Handle::Own(r)) => *r,
            TypeDefKind::Result(r) => match r.ok {
                Some(Type::Id(ok)) => match &self.resolve.types[ok].kind {
                    TypeDefKind::Handle(Handle::Own(r)) => *r,
                    _ => return None,
                },
                _ => return None,
            },
            _ => return None,
        };
        self.resolve.types[handle].name.clone()
    }

    fn def(&self, ty: &Type) -> Option<&wit_parser::TypeDef> {
        match ty {
            Type::Id(id) => Some(&self.resolve.types[*id]),
            _ => None,
        }
    }
}

fn is_bytes(resolve: &Resolve, ty: &Type) -> bool {
    matches!(ty, Type::Id(id) if matches!(resolve.types[*id].kind, TypeDefKind::List(Type::U8)))
}

fn snake(kebab: &str) -> String {
    kebab.replace('-', "_")
}

fn camel(kebab: &str) -> String {
    let mut out = String::new();
    for (i, word) in kebab.split('-').enumerate() {
        if i == 0 {
            out.push_str(word);
        } else {
            upper_first(&mut out, word);
        }
    }
    out
}

fn upper_camel(kebab: &str) -> String {
    let mut out = String::new();
    for word in kebab.split('-') {
        upper_first(&mut out, word);
    }
    out
}

fn upper_first(out: &mut String, word: &str) {
    let mut chars = word.chars();
    if let Some(c) = chars.next() {
        out.push(c.to_ascii_uppercase());
        out.push_str(chars.as_str());
    }
}

/// The files of a new guest project, without the WIT and `fidius.toml`
/// (written by the caller).
pub(crate) fn skeleton(
    lang: Lang,
    wit: &str,
    wit_file: &Path,
    trait_name: &str,
    plugin: &str,
) -> anyhow::Result<Vec<(String, String)>> {
    let api = Api::read(wit, trait_name)?;
    Ok(match lang {
        Lang::Js => vec![
            ("plugin.js".into(), js(&api, trait_name, plugin)),
            (
                "package.json".into(),
                format!(
                    "{{\n  \"name\": \"{}\",\n  \"private\": true,\n  \"type\": \"module\",\n  \
                     \"description\": \"A {trait_name} plugin in JavaScript\",\n  \
                     \"scripts\": {{ \"build\": \"cargo fidius build\" }},\n  \
                     \"devDependencies\": {{\n    \"@bytecodealliance/componentize-js\": \"{}\"\n  }}\n}}\n",
                    snake(&fidius_runtime::wit_name(plugin)).replace('_', "-"),
                    super::js::COMPONENTIZE_JS
                ),
            ),
        ],
        Lang::PythonWasm => vec![("app.py".into(), python(&api, trait_name, plugin))],
        Lang::C => vec![("plugin.c".into(), c(&api, wit_file, trait_name, plugin)?)],
        Lang::Go => vec![
            ("main.go".into(), go(&api, trait_name, plugin)?),
            ("cabi.go".into(), GO_CABI.to_owned()),
            (
                "go.mod".into(),
                format!(
                    "module {}\n\ngo 1.24\n",
                    snake(&fidius_runtime::wit_name(plugin))
                ),
            ),
        ],
    })
}

// ---------------------------------------------------------------- JavaScript

fn js_default(api: &Api, ty: &Type) -> String {
    match ty {
        Type::Bool => "false".into(),
        Type::U64 | Type::S64 => "0n".into(),
        Type::U8 | Type::U16 | Type::U32 | Type::S8 | Type::S16 | Type::S32 => "0".into(),
        Type::F32 | Type::F64 => "0".into(),
        Type::Char => "'\\0'".into(),
        Type::String => "''".into(),
        Type::ErrorContext => "undefined".into(),
        Type::Id(id) => match &api.resolve.types[*id].kind {
            TypeDefKind::Type(t) => js_default(api, t),
            TypeDefKind::List(Type::U8) => "new Uint8Array()".into(),
            TypeDefKind::List(_) | TypeDefKind::Map(..) => "[]".into(),
            TypeDefKind::FixedLengthList(t, n) => {
                format!("Array({n}).fill({})", js_default(api, t))
            }
            TypeDefKind::Option(_) => "undefined".into(),
            TypeDefKind::Tuple(t) => format!(
                "[{}]",
                t.types
                    .iter()
                    .map(|t| js_default(api, t))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            TypeDefKind::Record(r) => format!(
                "{{ {} }}",
                r.fields
                    .iter()
                    .map(|f| format!("{}: {}", camel(&f.name), js_default(api, &f.ty)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            TypeDefKind::Variant(v) => {
                let case = &v.cases[0];
                match &case.ty {
                    Some(t) => format!("{{ tag: '{}', val: {} }}", case.name, js_default(api, t)),
                    None => format!("{{ tag: '{}' }}", case.name),
                }
            }
            TypeDefKind::Enum(e) => format!("'{}'", e.cases[0].name),
            TypeDefKind::Flags(_) => "{}".into(),
            TypeDefKind::Result(r) => {
                r.ok.as_ref()
                    .map_or_else(|| "undefined".into(), |t| js_default(api, t))
            }
            TypeDefKind::Handle(Handle::Own(r)) => format!(
                "new {}([])",
                upper_camel(api.resolve.types[*r].name.as_deref().unwrap_or("stream"))
            ),
            _ => "undefined".into(),
        },
    }
}

fn js(api: &Api, trait_name: &str, plugin: &str) -> String {
    let mut out = format!(
        "/**\n * The `{plugin}` plugin: a `{trait_name}` plugin written in JavaScript.\n *\n \
         * `cargo fidius build` builds it into a WebAssembly component with\n \
         * componentize-js, from the interface's WIT (`wit/`), and stamps it with the\n \
         * interface's fidius metadata. Each method below returns a default value:\n \
         * fill them in. How WIT maps to JavaScript: `u64`/`s64` are BigInts,\n \
         * `option<T>` is the value or `undefined`, a variant is `{{ tag, val }}`, a\n \
         * `result` is the plain ok value or `{{ tag: 'err', val }}`, a returned\n \
         * stream is an instance of its class below.\n */\n\n"
    );
    let _ = writeln!(
        out,
        "export const plugin = {{\n  \
         // Called once per instance, before any method{}.\n  \
         create(name, config) {{\n    \
         if (name !== '{plugin}') {{\n      \
         return {{ tag: 'err', val: {{ tag: 'unknown-plugin', val: name }} }};\n    \
         }}\n  }},\n\n  \
         destroy() {{}},\n}};\n",
        if api.typed_config {
            ", with the configuration"
        } else {
            " (`config` is the plugin's own configuration in the fidius wire format)"
        }
    );
    if !api.streams.is_empty() {
        out.push_str(
            "/** A returned stream: `next(max)` hands out up to `max` items (at least\n \
             * one while any remain), an empty list at the end. */\n\
             class Stream {\n  #items;\n\n  constructor(items) {\n    \
             this.#items = items[Symbol.iterator]();\n  }\n\n  next(max) {\n    \
             const out = [];\n    while (out.length < Math.max(max, 1)) {\n      \
             const { value, done } = this.#items.next();\n      if (done) break;\n      \
             out.push(value);\n    }\n    return out;\n  }\n\n  \
             // Called when the host drops the stream.\n  [Symbol.dispose]() {}\n}\n\n",
        );
        for stream in &api.streams {
            let _ = writeln!(out, "class {} extends Stream {{}}", upper_camel(stream));
        }
        out.push('\n');
    }
    let _ = writeln!(out, "export const {} = {{", camel(&api.iface));
    for stream in &api.streams {
        let _ = writeln!(out, "  {},", upper_camel(stream));
    }
    if !api.streams.is_empty() {
        out.push('\n');
    }
    for f in &api.funcs {
        let params: Vec<String> = f.params.iter().map(|p| camel(&p.name)).collect();
        let _ = writeln!(out, "  {}({}) {{", camel(&f.name), params.join(", "));
        if let Some(ty) = &f.result {
            let _ = writeln!(out, "    return {};", js_default(api, ty));
        }
        out.push_str("  },\n\n");
    }
    out.truncate(out.trim_end().len());
    out.push_str("\n};\n");
    out
}

// -------------------------------------------------------------------- Python

/// Where componentize-py puts a type: the module of the interface that
/// defines it.
fn py_type_module(api: &Api, id: wit_parser::TypeId) -> String {
    match api.resolve.types[id].owner {
        TypeOwner::Interface(i) => {
            let name = api.resolve.interfaces[i].name.clone().unwrap_or_default();
            let dir = if name == api.iface {
                "exports"
            } else {
                "imports"
            };
            format!("wit_world.{dir}.{}", snake(&name))
        }
        _ => "wit_world".into(),
    }
}

fn py_default(api: &Api, ty: &Type, imports: &mut Vec<String>) -> String {
    match ty {
        Type::Bool => "False".into(),
        Type::F32 | Type::F64 => "0.0".into(),
        Type::Char => "\"\\0\"".into(),
        Type::String => "\"\"".into(),
        Type::ErrorContext => "None".into(),
        Type::Id(id) => {
            let def = &api.resolve.types[*id];
            let qualified = |imports: &mut Vec<String>, name: &str| {
                let module = py_type_module(api, *id);
                let import = format!("import {module}");
                if !imports.contains(&import) {
                    imports.push(import);
                }
                format!("{module}.{name}")
            };
            match &def.kind {
                TypeDefKind::Type(t) => py_default(api, t, imports),
                TypeDefKind::List(Type::U8) => "b\"\"".into(),
                TypeDefKind::List(_) | TypeDefKind::Map(..) => "[]".into(),
                TypeDefKind::FixedLengthList(t, n) => {
                    format!("[{}] * {n}", py_default(api, t, imports))
                }
                TypeDefKind::Option(_) => "None".into(),
                TypeDefKind::Tuple(t) => format!(
                    "({},)",
                    t.types
                        .iter()
                        .map(|t| py_default(api, t, imports))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                TypeDefKind::Record(r) => {
                    let fields: Vec<String> = r
                        .fields
                        .iter()
                        .map(|f| format!("{}={}", snake(&f.name), py_default(api, &f.ty, imports)))
                        .collect();
                    let name = upper_camel(def.name.as_deref().unwrap_or("record"));
                    format!("{}({})", qualified(imports, &name), fields.join(", "))
                }
                TypeDefKind::Variant(v) => {
                    let case = &v.cases[0];
                    let name = format!(
                        "{}_{}",
                        upper_camel(def.name.as_deref().unwrap_or("variant")),
                        upper_camel(&case.name)
                    );
                    let payload = case
                        .ty
                        .as_ref()
                        .map(|t| py_default(api, t, imports))
                        .unwrap_or_default();
                    format!("{}({payload})", qualified(imports, &name))
                }
                TypeDefKind::Enum(e) => {
                    let name = upper_camel(def.name.as_deref().unwrap_or("enum"));
                    format!(
                        "{}.{}",
                        qualified(imports, &name),
                        snake(&e.cases[0].name).to_uppercase()
                    )
                }
                TypeDefKind::Flags(f) => {
                    let name = upper_camel(def.name.as_deref().unwrap_or("flags"));
                    let _ = f;
                    format!("{}(0)", qualified(imports, &name))
                }
                TypeDefKind::Result(r) => {
                    r.ok.as_ref()
                        .map_or_else(|| "None".into(), |t| py_default(api, t, imports))
                }
                TypeDefKind::Handle(Handle::Own(_)) => "Stream(())".into(),
                _ => "None".into(),
            }
        }
        _ => "0".into(),
    }
}

fn python(api: &Api, trait_name: &str, plugin: &str) -> String {
    let mut imports = Vec::new();
    let mut methods = String::new();
    for f in &api.funcs {
        let mut params = vec!["self".to_owned()];
        params.extend(f.params.iter().map(|p| snake(&p.name)));
        let _ = writeln!(
            methods,
            "    def {}({}):",
            snake(&f.name),
            params.join(", ")
        );
        match &f.result {
            Some(ty) => {
                let value = py_default(api, ty, &mut imports);
                let _ = writeln!(methods, "        return {value}\n");
            }
            None => methods.push_str("        pass\n\n"),
        }
    }
    imports.sort();
    let stream = if api.streams.is_empty() {
        String::new()
    } else {
        "\n\nclass Stream:\n    \
         \"\"\"A returned stream: `next(max)` hands out up to `max` items (at least\n    \
         one while any remain), an empty list at the end.\"\"\"\n\n    \
         def __init__(self, items):\n        self.items = iter(items)\n\n    \
         def next(self, max: int) -> list:\n        out = []\n        \
         for item in self.items:\n            out.append(item)\n            \
         if len(out) >= max:\n                break\n        return out\n"
            .to_owned()
    };
    format!(
        "\"\"\"The `{plugin}` plugin: a `{trait_name}` plugin written in Python.\n\n\
         `cargo fidius build` builds it into a WebAssembly component with\n\
         componentize-py, from the interface's WIT (`wit/`), and stamps it with the\n\
         interface's fidius metadata. Each method returns a default value: fill\n\
         them in. `componentize-py -d wit -w {iface}-plugin bindings .` writes the\n\
         `wit_world` bindings here, for your editor.\n\"\"\"\n\n\
         from componentize_py_types import Err\n\
         from wit_world import exports\n\
         from wit_world.exports import plugin as lifecycle\n\
         {imports}\n\n\
         class Plugin(exports.Plugin):\n    \
         def create(self, plugin, config):\n        \
         \"\"\"Called once per instance, before any method{config}.\"\"\"\n        \
         if plugin != \"{plugin}\":\n            \
         raise Err(lifecycle.CreateError_UnknownPlugin(plugin))\n\n    \
         def destroy(self):\n        pass\n{stream}\n\n\
         class {class}(exports.{class}):\n{methods}",
        iface = api.iface,
        imports = imports.join("\n"),
        config = if api.typed_config {
            ", with the configuration"
        } else {
            " (`config` is the plugin's own configuration in the fidius wire format)"
        },
        class = upper_camel(&api.iface),
        methods = methods.trim_end().to_owned() + "\n",
    )
}

// ------------------------------------------------------------------------- C

/// One prototype of the `wit-bindgen c` header that the plugin defines.
struct CProto {
    text: String,
    name: String,
    ret: String,
    params: Vec<(String, String)>,
}

fn c_protos(header: &str) -> Vec<CProto> {
    let mut out = Vec::new();
    let mut exported = false;
    for line in header.lines() {
        if line.starts_with("// ") {
            exported = line.starts_with("// Exported Functions from");
            continue;
        }
        let line = line.trim();
        let wanted = (exported && !line.is_empty() && !line.starts_with("extern"))
            || (line.ends_with(';')
                && line.contains("_destructor(")
                && !line.starts_with("extern"));
        if !wanted || !line.ends_with(");") {
            continue;
        }
        let Some((head, rest)) = line.split_once('(') else {
            continue;
        };
        let Some((ret, name)) = head.rsplit_once(' ') else {
            continue;
        };
        let (ret, name) = match name.strip_prefix('*') {
            Some(n) => (format!("{ret}*"), n.to_owned()),
            None => (ret.to_owned(), name.to_owned()),
        };
        let params = rest
            .trim_end_matches(");")
            .split(", ")
            .filter(|p| *p != "void" && !p.is_empty())
            .filter_map(|p| {
                let (ty, name) = p.rsplit_once(' ')?;
                Some(match name.strip_prefix('*') {
                    Some(n) => (format!("{ty} *"), n.to_owned()),
                    None => (ty.to_owned(), name.to_owned()),
                })
            })
            .collect();
        out.push(CProto {
            text: line.trim_end_matches(';').to_owned(),
            name,
            ret,
            params,
        });
    }
    out
}

/// Frees `expr` (a pointer to a `<base>_t`): with the header's
/// `<base>_free` when it declares one, else field by field (wit-bindgen c
/// declares no `_free` for some records used only by exports).
fn free_value(header: &str, base: &str, expr: &str, depth: usize, out: &mut String) {
    if header.contains(&format!(" {base}_free(")) {
        let _ = writeln!(out, "    {base}_free({expr});");
        return;
    }
    let open = format!("typedef struct {base}_t {{");
    let Some(start) = header.find(&open) else {
        return;
    };
    let body = &header[start + open.len()..];
    let Some(end) = body.find(&format!("}} {base}_t;")) else {
        return;
    };
    if depth > 4 {
        return;
    }
    for field in body[..end].lines() {
        let field = field.trim().trim_end_matches(';');
        let Some((ty, name)) = field.rsplit_once(char::is_whitespace) else {
            continue;
        };
        if let Some(inner) = ty.trim().strip_suffix("_t") {
            free_value(header, inner, &format!("&{expr}->{name}"), depth + 1, out);
        }
    }
}

/// The header's `<prefix>_<resource>_drop_own` (imported resources live in
/// their interface's namespace, not the exports').
fn drop_function(header: &str, resource: &str) -> Option<String> {
    let suffix = format!("_{resource}_drop_own(");
    header.lines().find_map(|l| {
        let end = l.find(&suffix)? + suffix.len() - 1;
        let start = l[..end]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(0, |i| i + 1);
        Some(l[start..end].to_owned())
    })
}

fn c(api: &Api, wit_file: &Path, trait_name: &str, plugin: &str) -> anyhow::Result<String> {
    let world = format!("{}-plugin", api.iface);
    let (mut resolve, world_id) = super::componentize::resolve(wit_file, &world)?;
    let mut files = wit_bindgen_core::Files::default();
    wit_bindgen_c::Opts::default()
        .build()
        .generate(&mut resolve, world_id, &mut files)
        .context("`wit-bindgen c` failed on the interface's WIT")?;
    let header_name = format!("{}.h", snake(&world));
    let header = files
        .iter()
        .find(|(n, _)| *n == header_name)
        .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
        .with_context(|| format!("`wit-bindgen c` wrote no `{header_name}`"))?;
    let protos = c_protos(&header);
    if protos.is_empty() {
        bail!("found no exported functions in `{header_name}`");
    }
    let mut out = format!(
        "// The `{plugin}` plugin: a `{trait_name}` plugin written in C.\n//\n\
         // `cargo fidius build` generates the bindings (`{header_name}`) from the\n\
         // interface's WIT (`wit/`) with `wit-bindgen c`, compiles this file with\n\
         // clang for wasm32-wasi and makes the module a component stamped with the\n\
         // interface's fidius metadata. Each function returns a default value: fill\n\
         // them in. Arguments passed by pointer are the plugin's to free (the\n\
         // `*_free` functions of the header); results are the host's.\n\n\
         #include <stdlib.h>\n#include <string.h>\n\n#include \"{header_name}\"\n\n"
    );
    // Returned resources: the plugin defines their state.
    let resource_types: Vec<String> = header
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let rest = l.strip_prefix("typedef struct ")?;
            let (a, b) = rest.split_once(' ')?;
            (a.ends_with("_t") && b == format!("{a};")).then(|| a.to_owned())
        })
        .collect();
    for ty in &resource_types {
        let _ = writeln!(
            out,
            "// The state of a returned stream.\nstruct {ty} {{\n    uint64_t next;\n}};\n"
        );
    }
    let prefix = |proto: &CProto| {
        proto
            .name
            .rsplit_once(&format!("_{}_", snake(&api.iface)))
            .map(|(p, _)| format!("{p}_{}_", snake(&api.iface)))
    };
    for proto in &protos {
        let _ = writeln!(out, "{} {{", proto.text);
        if proto.name.ends_with("_destructor") {
            out.push_str("    free(rep);\n}\n\n");
            continue;
        }
        let result_out = proto.params.iter().any(|(_, n)| n == "ret" || n == "err");
        // Arguments handed over: free them (streams: drop them).
        for (ty, name) in &proto.params {
            if name == "ret" || name == "err" || name == "self" {
                continue;
            }
            if let Some(base) = ty.strip_suffix("_t *") {
                free_value(&header, base, name, 0, &mut out);
            } else if let Some(i) = ty.find("_own_") {
                let res = ty[i + 5..].trim_end_matches("_t");
                let drop = drop_function(&header, res)
                    .with_context(|| format!("no drop function for `{ty}` in `{header_name}`"))?;
                let _ = writeln!(out, "    {drop}({name});");
            }
        }
        if proto.name.ends_with("_plugin_create") {
            let _ = writeln!(
                out,
                "    // Called once per instance: the plugin's name (\"{plugin}\") and its\n    \
                 // configuration. Return false with `err` set to refuse."
            );
        }
        if let Some((_, ret)) = proto.params.iter().find(|(_, n)| n == "ret") {
            let _ = ret;
            out.push_str("    memset(ret, 0, sizeof *ret);\n");
        }
        let is_option = api
            .funcs
            .iter()
            .find(|f| proto.name.ends_with(&format!("_{}", snake(&f.name))))
            .and_then(|f| api.def(f.result.as_ref()?))
            .is_some_and(|d| matches!(d.kind, TypeDefKind::Option(_)));
        match proto.ret.as_str() {
            "void" => {}
            "bool" if result_out => {
                let _ = writeln!(
                    out,
                    "    return {};",
                    if is_option { "false" } else { "true" }
                );
            }
            "bool" => out.push_str("    return false;\n"),
            ret if ret.contains("_own_") => {
                let pre = prefix(proto).unwrap_or_default();
                let res = ret
                    .split("_own_")
                    .nth(1)
                    .unwrap_or_default()
                    .trim_end_matches("_t");
                let _ = writeln!(
                    out,
                    "    return {pre}{res}_new(calloc(1, sizeof({pre}{res}_t)));"
                );
            }
            _ => out.push_str("    return 0;\n"),
        }
        out.push_str("}\n\n");
    }
    out.truncate(out.trim_end().len());
    out.push('\n');
    Ok(out)
}

// ------------------------------------------------------------------------ Go

/// A core WebAssembly value type, as the canonical ABI flattens WIT types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Core {
    I32,
    I64,
    F32,
    F64,
}

impl Core {
    fn go(self) -> &'static str {
        match self {
            Core::I32 => "uint32",
            Core::I64 => "uint64",
            Core::F32 => "float32",
            Core::F64 => "float64",
        }
    }

    /// Two cases' values sharing a slot.
    fn join(self, other: Core) -> Core {
        match (self, other) {
            (a, b) if a == b => a,
            (Core::I32, Core::F32) | (Core::F32, Core::I32) => Core::I32,
            _ => Core::I64,
        }
    }
}

/// The canonical ABI's flattening of `ty`.
fn flatten(api: &Api, ty: &Type, out: &mut Vec<Core>) {
    match ty {
        Type::Bool
        | Type::U8
        | Type::U16
        | Type::U32
        | Type::S8
        | Type::S16
        | Type::S32
        | Type::Char
        | Type::ErrorContext => out.push(Core::I32),
        Type::U64 | Type::S64 => out.push(Core::I64),
        Type::F32 => out.push(Core::F32),
        Type::F64 => out.push(Core::F64),
        Type::String => out.extend([Core::I32, Core::I32]),
        Type::Id(id) => match &api.resolve.types[*id].kind {
            TypeDefKind::Type(t) => flatten(api, t, out),
            TypeDefKind::List(_) | TypeDefKind::Map(..) => out.extend([Core::I32, Core::I32]),
            TypeDefKind::FixedLengthList(t, n) => {
                for _ in 0..*n {
                    flatten(api, t, out);
                }
            }
            TypeDefKind::Record(r) => r.fields.iter().for_each(|f| flatten(api, &f.ty, out)),
            TypeDefKind::Tuple(t) => t.types.iter().for_each(|t| flatten(api, t, out)),
            TypeDefKind::Flags(f) => out.extend(std::iter::repeat_n(
                Core::I32,
                f.flags.len().div_ceil(32).max(1),
            )),
            TypeDefKind::Enum(_) | TypeDefKind::Handle(_) | TypeDefKind::Resource => {
                out.push(Core::I32);
            }
            TypeDefKind::Option(t) => cases(api, [None, Some(t)], out),
            TypeDefKind::Result(r) => cases(api, [r.ok.as_ref(), r.err.as_ref()], out),
            TypeDefKind::Variant(v) => cases(api, v.cases.iter().map(|c| c.ty.as_ref()), out),
            _ => out.push(Core::I32),
        },
    }
}

/// A discriminant, then the cases' payloads joined slot by slot.
fn cases<'a>(api: &Api, cases: impl IntoIterator<Item = Option<&'a Type>>, out: &mut Vec<Core>) {
    out.push(Core::I32);
    let mut joined: Vec<Core> = Vec::new();
    for case in cases.into_iter().flatten() {
        let mut flat = Vec::new();
        flatten(api, case, &mut flat);
        for (i, c) in flat.into_iter().enumerate() {
            match joined.get_mut(i) {
                Some(slot) => *slot = slot.join(c),
                None => joined.push(c),
            }
        }
    }
    out.extend(joined);
}

/// The most flat parameters before they are passed through memory.
const MAX_FLAT_PARAMS: usize = 16;

/// What the runtime part of a Go guest is: memory for the host's
/// arguments and results, and the WASI adapter's start-up arena.
pub(crate) const GO_CABI: &str = include_str!("cabi.go");

fn go(api: &Api, trait_name: &str, plugin: &str) -> anyhow::Result<String> {
    let pkg = api
        .package
        .split('@')
        .next()
        .unwrap_or(&api.package)
        .to_owned();
    let version = api.package.split_once('@').map(|(_, v)| v).unwrap_or("");
    let export = |iface: &str, func: &str| format!("{pkg}/{iface}@{version}#{func}");
    let mut out = format!(
        "// The `{plugin}` plugin: a `{trait_name}` plugin written in Go.\n//\n\
         // `cargo fidius build` builds it with Go's wasip1 port (`-buildmode=c-shared`)\n\
         // and makes it a WebAssembly component stamped with the interface's fidius\n\
         // metadata. Go has no WIT bindings generator here, so each export below is\n\
         // written against the component model's canonical ABI (`cabi.go` has the\n\
         // helpers): scalars are passed as they are; a string or a list as an\n\
         // address and a length in linear memory; a record, option, result or\n\
         // variant as its fields and cases one after another; a result that does\n\
         // not fit one value is written to a return area whose address the\n\
         // function returns. Each function returns a zeroed (default) result,\n\
         // and each stream is empty: fill them in. A returned stream is a\n\
         // resource: `[resource-new]` makes a handle for a value of yours (its\n\
         // \"rep\"), which `next` and the destructor then receive.\n\n\
         package main\n\n\
         func main() {{}}\n\n\
         // Called once per instance, before any method: the plugin's name\n\
         // (\"{plugin}\") and its configuration{config}.\n\
         //\n//go:wasmexport {create}\n\
         func create({create_params}) uint32 {{\n\t\
         name := takeString(namePtr, nameLen)\n\t\
         _ = name\n\t\
         return returnZeroed(16) // ok\n}}\n\n\
         //go:wasmexport {destroy}\n\
         func destroy() {{}}\n",
        config = if api.typed_config {
            ""
        } else {
            " in the fidius wire format"
        },
        create = export("plugin", "create"),
        destroy = export("plugin", "destroy"),
        create_params = {
            let mut flat = vec![Core::I32, Core::I32];
            let create = api.create_params();
            flatten(api, &create, &mut flat);
            let mut params = vec!["namePtr, nameLen uint32".to_owned()];
            for (i, c) in flat.iter().enumerate().skip(2) {
                params.push(format!("config{} {}", i - 2, c.go()));
            }
            params.join(", ")
        },
    );
    for f in api.funcs.iter().chain(&api.methods) {
        let name = upper_camel(&f.name.replace(['[', ']', '.'], "-").replace("method-", ""));
        let mut flat_params = Vec::new();
        let mut params = Vec::new();
        for p in &f.params {
            let mut flat = Vec::new();
            flatten(api, &p.ty, &mut flat);
            let base = camel(&p.name);
            if flat.len() == 1 {
                params.push(format!("{base} {}", flat[0].go()));
            } else {
                for (i, c) in flat.iter().enumerate() {
                    params.push(format!("{base}{i} {}", c.go()));
                }
            }
            flat_params.extend(flat);
        }
        if flat_params.len() > MAX_FLAT_PARAMS {
            params = vec!["args uint32".to_owned()];
        }
        let mut flat_result = Vec::new();
        if let Some(ty) = &f.result {
            flatten(api, ty, &mut flat_result);
        }
        let wit_sig = format!(
            "{}: func({}){}",
            f.name,
            f.params
                .iter()
                .map(|p| format!("{}: {}", p.name, wit_type(api, &p.ty)))
                .collect::<Vec<_>>()
                .join(", "),
            f.result
                .as_ref()
                .map(|t| format!(" -> {}", wit_type(api, t)))
                .unwrap_or_default()
        );
        let (ret, body) = if f.name.starts_with('[') {
            // A stream's `next`: `ok` and an empty list, the end.
            (
                " uint32".to_owned(),
                format!(
                    "\treturn returnZeroed({}) // ok, no items: the end\n",
                    flat_result.len() * 8
                ),
            )
        } else if let Some(stream) = api.returned_stream(f) {
            let new = format!("{}New", camel(&stream));
            match flat_result.as_slice() {
                [_] => (" uint32".to_owned(), format!("\treturn {new}(1)\n")),
                more => (
                    " uint32".to_owned(),
                    format!(
                        "\t// `ok`, then the stream's handle.\n\ta := returnZeroed({})\n\t\
                         put32(a+4, {new}(1))\n\treturn a\n",
                        more.len() * 8
                    ),
                ),
            }
        } else {
            match flat_result.as_slice() {
                [] => (String::new(), String::new()),
                [one] => (format!(" {}", one.go()), "\treturn 0\n".to_owned()),
                more => (
                    " uint32".to_owned(),
                    format!(
                        "\treturn returnZeroed({}) // the result's fields, one after another\n",
                        more.len() * 8
                    ),
                ),
            }
        };
        let _ = writeln!(
            out,
            "\n// {wit_sig}\n//\n//go:wasmexport {}\nfunc {name}({}){ret} {{\n{body}}}",
            export(&api.iface, &f.name),
            params.join(", ")
        );
    }
    for stream in &api.streams {
        let _ = writeln!(
            out,
            "\n// Makes a handle to a `{stream}` for `rep`, a value of yours.\n\
             //\n//go:wasmimport [export]{module} [resource-new]{stream}\n\
             func {new}New(rep uint32) uint32\n\n\
             // The host dropped the `{stream}` whose value is `rep`.\n\
             //\n//go:wasmexport {dtor}\nfunc {name}Drop(rep uint32) {{}}",
            module = export(&api.iface, "").trim_end_matches('#'),
            new = camel(stream),
            dtor = export(&api.iface, &format!("[dtor]{stream}")),
            name = upper_camel(stream),
        );
    }
    Ok(out)
}

/// A WIT type as written in the interface (for comments).
fn wit_type(api: &Api, ty: &Type) -> String {
    match ty {
        Type::Bool => "bool".into(),
        Type::U8 => "u8".into(),
        Type::U16 => "u16".into(),
        Type::U32 => "u32".into(),
        Type::U64 => "u64".into(),
        Type::S8 => "s8".into(),
        Type::S16 => "s16".into(),
        Type::S32 => "s32".into(),
        Type::S64 => "s64".into(),
        Type::F32 => "f32".into(),
        Type::F64 => "f64".into(),
        Type::Char => "char".into(),
        Type::String => "string".into(),
        Type::ErrorContext => "error-context".into(),
        Type::Id(id) => {
            let def = &api.resolve.types[*id];
            if let Some(name) = &def.name {
                return name.clone();
            }
            match &def.kind {
                TypeDefKind::Type(t) => wit_type(api, t),
                TypeDefKind::List(t) => format!("list<{}>", wit_type(api, t)),
                TypeDefKind::Option(t) => format!("option<{}>", wit_type(api, t)),
                TypeDefKind::Tuple(t) => format!(
                    "tuple<{}>",
                    t.types
                        .iter()
                        .map(|t| wit_type(api, t))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                TypeDefKind::Result(r) => match (&r.ok, &r.err) {
                    (None, None) => "result".into(),
                    (Some(o), None) => format!("result<{}>", wit_type(api, o)),
                    (None, Some(e)) => format!("result<_, {}>", wit_type(api, e)),
                    (Some(o), Some(e)) => {
                        format!("result<{}, {}>", wit_type(api, o), wit_type(api, e))
                    }
                },
                TypeDefKind::Handle(Handle::Own(r) | Handle::Borrow(r)) => {
                    api.resolve.types[*r].name.clone().unwrap_or_default()
                }
                _ => "…".into(),
            }
        }
    }
}
