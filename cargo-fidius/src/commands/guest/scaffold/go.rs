//! The Go skeleton: each export written against the canonical ABI (Go has
//! no WIT bindings generator here), flattened from the WIT types.

use std::fmt::Write as _;

use wit_parser::{Handle, Int, SizeAlign, Type, TypeDefKind};

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

/// The number of flat values `ty` takes.
fn flat_len(api: &Api, ty: &Type) -> usize {
    let mut flat = Vec::new();
    flatten(api, ty, &mut flat);
    flat.len()
}

/// Whether a value of `ty` holds memory the host allocated in the guest.
fn holds_memory(api: &Api, ty: &Type) -> bool {
    let Type::Id(id) = ty else {
        return *ty == Type::String;
    };
    let any = |types: &mut dyn Iterator<Item = &Type>| {
        for t in types {
            if holds_memory(api, t) {
                return true;
            }
        }
        false
    };
    match &api.resolve.types[*id].kind {
        TypeDefKind::Type(t) | TypeDefKind::FixedLengthList(t, _) | TypeDefKind::Option(t) => {
            holds_memory(api, t)
        }
        TypeDefKind::List(_) | TypeDefKind::Map(..) => true,
        TypeDefKind::Record(r) => any(&mut r.fields.iter().map(|f| &f.ty)),
        TypeDefKind::Tuple(t) => any(&mut t.types.iter()),
        TypeDefKind::Result(r) => any(&mut r.ok.iter().chain(&r.err)),
        TypeDefKind::Variant(v) => any(&mut v.cases.iter().filter_map(|c| c.ty.as_ref())),
        _ => false,
    }
}

/// The address `offset` bytes past `addr`.
fn plus(addr: &str, offset: usize) -> String {
    match offset {
        0 => addr.to_owned(),
        _ => format!("{addr}+{offset}"),
    }
}

/// Go statements that free what the host allocated for an export's
/// arguments (they are the export's): strings and lists, and the strings
/// and lists inside them.
struct Frees<'a> {
    api: &'a Api,
    sizes: SizeAlign,
    lines: Vec<String>,
    loops: usize,
}

impl<'a> Frees<'a> {
    fn new(api: &'a Api) -> Self {
        let mut sizes = SizeAlign::default();
        // A WIT that parsed has sizes; one that did not fill leaves them 0.
        let _ = sizes.fill(&api.resolve);
        Self {
            api,
            sizes,
            lines: Vec::new(),
            loops: 0,
        }
    }

    fn line(&mut self, indent: usize, text: String) {
        self.lines.push(format!("{}{text}", "\t".repeat(indent)));
    }

    /// A value of `ty` passed as the flat values `vals`.
    fn flat(&mut self, ty: &Type, vals: &[(String, Core)], indent: usize) {
        if !holds_memory(self.api, ty) {
            return;
        }
        let u32 = |(v, c): &(String, Core)| match c {
            Core::I32 => v.clone(),
            _ => format!("uint32({v})"),
        };
        let Type::Id(id) = ty else {
            return self.line(indent, format!("free({})", u32(&vals[0])));
        };
        let api = self.api;
        match &api.resolve.types[*id].kind {
            TypeDefKind::Type(t) => self.flat(t, vals, indent),
            TypeDefKind::List(e) => self.list(&[*e], &u32(&vals[0]), &u32(&vals[1]), indent),
            TypeDefKind::Map(k, v) => self.list(&[*k, *v], &u32(&vals[0]), &u32(&vals[1]), indent),
            TypeDefKind::FixedLengthList(t, n) => {
                let each = flat_len(api, t);
                for i in 0..*n as usize {
                    self.flat(t, &vals[i * each..(i + 1) * each], indent);
                }
            }
            TypeDefKind::Record(r) => self.fields(r.fields.iter().map(|f| &f.ty), vals, indent),
            TypeDefKind::Tuple(t) => self.fields(t.types.iter(), vals, indent),
            TypeDefKind::Option(t) => self.flat_cases(&[None, Some(*t)], vals, indent),
            TypeDefKind::Result(r) => self.flat_cases(&[r.ok, r.err], vals, indent),
            TypeDefKind::Variant(v) => {
                let cases: Vec<_> = v.cases.iter().map(|c| c.ty).collect();
                self.flat_cases(&cases, vals, indent);
            }
            _ => {}
        }
    }

    fn fields<'t>(
        &mut self,
        types: impl Iterator<Item = &'t Type>,
        vals: &[(String, Core)],
        indent: usize,
    ) {
        let mut at = 0;
        for ty in types {
            let n = flat_len(self.api, ty);
            self.flat(ty, &vals[at..at + n], indent);
            at += n;
        }
    }

    fn flat_cases(&mut self, cases: &[Option<Type>], vals: &[(String, Core)], indent: usize) {
        for (k, case) in cases.iter().enumerate() {
            let Some(ty) = case.filter(|t| holds_memory(self.api, t)) else {
                continue;
            };
            self.line(indent, format!("if {} == {k} {{", vals[0].0));
            let n = flat_len(self.api, &ty);
            self.flat(&ty, &vals[1..1 + n], indent + 1);
            self.line(indent, "}".into());
        }
    }

    /// A list at `ptr` of `len` elements, each the record of `elem`.
    fn list(&mut self, elem: &[Type], ptr: &str, len: &str, indent: usize) {
        if elem.iter().any(|t| holds_memory(self.api, t)) {
            let (i, e) = (format!("i{}", self.loops), format!("e{}", self.loops));
            self.loops += 1;
            let size = self.sizes.record(elem.iter()).size.size_wasm32();
            self.line(
                indent,
                format!("for {i} := uint32(0); {i} < {len}; {i}++ {{"),
            );
            self.line(indent + 1, format!("{e} := {ptr} + {i}*{size}"));
            for (offset, ty) in self.sizes.field_offsets(elem.iter()) {
                self.mem(ty, &plus(&e, offset.size_wasm32()), indent + 1);
            }
            self.line(indent, "}".into());
        }
        self.line(indent, format!("free({ptr})"));
    }

    /// A value of `ty` in memory at `addr`.
    fn mem(&mut self, ty: &Type, addr: &str, indent: usize) {
        if !holds_memory(self.api, ty) {
            return;
        }
        let Type::Id(id) = ty else {
            return self.line(indent, format!("free(get32({addr}))"));
        };
        let api = self.api;
        let (ptr, len) = (
            format!("get32({addr})"),
            format!("get32({})", plus(addr, 4)),
        );
        match &api.resolve.types[*id].kind {
            TypeDefKind::Type(t) => self.mem(t, addr, indent),
            TypeDefKind::List(e) => self.list(&[*e], &ptr, &len, indent),
            TypeDefKind::Map(k, v) => self.list(&[*k, *v], &ptr, &len, indent),
            TypeDefKind::FixedLengthList(t, n) => {
                let size = self.sizes.size(t).size_wasm32();
                for i in 0..*n as usize {
                    self.mem(t, &plus(addr, i * size), indent);
                }
            }
            TypeDefKind::Record(r) => {
                let types: Vec<Type> = r.fields.iter().map(|f| f.ty).collect();
                self.mem_fields(&types, addr, indent);
            }
            TypeDefKind::Tuple(t) => self.mem_fields(&t.types.clone(), addr, indent),
            TypeDefKind::Option(t) => self.mem_cases(Int::U8, &[None, Some(*t)], addr, indent),
            TypeDefKind::Result(r) => self.mem_cases(Int::U8, &[r.ok, r.err], addr, indent),
            TypeDefKind::Variant(v) => {
                let cases: Vec<_> = v.cases.iter().map(|c| c.ty).collect();
                self.mem_cases(v.tag(), &cases, addr, indent);
            }
            _ => {}
        }
    }

    fn mem_fields(&mut self, types: &[Type], addr: &str, indent: usize) {
        let offsets: Vec<(usize, Type)> = self
            .sizes
            .field_offsets(types.iter())
            .into_iter()
            .map(|(o, t)| (o.size_wasm32(), *t))
            .collect();
        for (offset, ty) in offsets {
            self.mem(&ty, &plus(addr, offset), indent);
        }
    }

    fn mem_cases(&mut self, tag: Int, cases: &[Option<Type>], addr: &str, indent: usize) {
        let payload = self
            .sizes
            .payload_offset(tag, cases.iter().map(Option::as_ref))
            .size_wasm32();
        let disc = match tag {
            Int::U8 => format!("get8({addr})"),
            Int::U16 => format!("*(*uint16)(ptr({addr}))"),
            _ => format!("get32({addr})"),
        };
        for (k, case) in cases.iter().enumerate() {
            let Some(ty) = case.filter(|t| holds_memory(self.api, t)) else {
                continue;
            };
            self.line(indent, format!("if {disc} == {k} {{"));
            self.mem(&ty, &plus(addr, payload), indent + 1);
            self.line(indent, "}".into());
        }
    }

    /// The statement that frees them when the export returns, if any.
    fn deferred(self) -> String {
        match self.lines.as_slice() {
            [] => String::new(),
            [one] if !one.contains('{') => format!(
                "\t// The arguments' memory is the export's: read it, it is freed on return.\n\tdefer {}\n",
                one.trim_start()
            ),
            more => format!(
                "\t// The arguments' memory is the export's: read it, it is freed on return.\n\tdefer func() {{\n{}\n\t}}()\n",
                more.iter()
                    .map(|l| format!("\t\t{l}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            ),
        }
    }
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
    let config_vals: Vec<(String, Core)> = {
        let mut flat = Vec::new();
        flatten(api, &api.create_params(), &mut flat);
        flat.into_iter()
            .enumerate()
            .map(|(i, c)| (format!("config{i}"), c))
            .collect()
    };
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
         _ = name\n\
         {config_frees}\t\
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
        create_params = config_vals
            .iter()
            .map(|(name, c)| format!("{name} {}", c.go()))
            .fold("namePtr, nameLen uint32".to_owned(), |all, p| all
                + ", "
                + &p),
        config_frees = {
            let mut frees = Frees::new(api);
            frees.flat(&api.create_params(), &config_vals, 0);
            frees.deferred()
        },
    );
    for f in api.funcs.iter().chain(&api.methods) {
        let name = upper_camel(&f.name.replace(['[', ']', '.'], "-").replace("method-", ""));
        let mut flat_params = Vec::new();
        let mut params = Vec::new();
        let mut frees = Frees::new(api);
        for p in &f.params {
            let mut flat = Vec::new();
            flatten(api, &p.ty, &mut flat);
            let base = camel(&p.name);
            let vals: Vec<(String, Core)> = if flat.len() == 1 {
                vec![(base, flat[0])]
            } else {
                flat.iter()
                    .enumerate()
                    .map(|(i, c)| (format!("{base}{i}"), *c))
                    .collect()
            };
            params.extend(vals.iter().map(|(name, c)| format!("{name} {}", c.go())));
            frees.flat(&p.ty, &vals, 0);
            flat_params.extend(flat);
        }
        if flat_params.len() > MAX_FLAT_PARAMS {
            params = vec!["args uint32".to_owned()];
            frees = Frees::new(api);
            let types: Vec<Type> = f.params.iter().map(|p| p.ty).collect();
            frees.mem_fields(&types, "args", 0);
            frees.line(0, "free(args)".into());
        }
        let frees = frees.deferred();
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
            "\n// {wit_sig}\n//\n//go:wasmexport {}\nfunc {name}({}){ret} {{\n{frees}{body}}}",
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
