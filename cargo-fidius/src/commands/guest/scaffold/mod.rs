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

use anyhow::Context as _;
use wit_parser::{Function, Handle, Resolve, Type, TypeDefKind, TypeOwner};

use super::Lang;

mod c;
mod go;

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
        Lang::C => vec![("plugin.c".into(), c::c(&api, wit_file, trait_name, plugin)?)],
        Lang::Go => vec![
            ("main.go".into(), go::go(&api, trait_name, plugin)?),
            ("cabi.go".into(), go::go_cabi()),
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
