//! The Go skeleton: each export written against the canonical ABI (Go has
//! no WIT bindings generator here), flattened from the WIT types.

use std::fmt::Write as _;

use wit_parser::{Handle, Type, TypeDefKind};

use super::{Api, camel, upper_camel};

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
/// arguments and results, and the WASI adapter's start-up arena; without
/// the book's `// ANCHOR` markers.
pub(crate) fn go_cabi() -> String {
    include_str!("../cabi.go")
        .lines()
        .filter(|l| !l.starts_with("// ANCHOR"))
        .flat_map(|l| [l, "\n"])
        .collect()
}

pub(super) fn go(api: &Api, trait_name: &str, plugin: &str) -> anyhow::Result<String> {
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
