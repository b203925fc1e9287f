//! An interface's WIT: the component-model description of a
//! `#[plugin_interface]` trait that WebAssembly plugins implement.
//!
//! `#[plugin_interface]` emits [`WitInterface`] for the trait; its `wit()`
//! traces every argument and return type through serde (see `trace`) and
//! renders one WIT package. Serde types map to real WIT types — structs to
//! records, enums to enums or variants, `Option` to `option`, sequences to
//! `list`, maps to `list<tuple<k, v>>`, byte buffers to `list<u8>` — so guests
//! in other languages see natural types. The mapping is specified in
//! `docs/src/wit.md`.

mod names;
mod python;
mod trace;

use std::fmt::Write as _;

pub use names::{ident, kebab, upper_camel};
pub use python::{python_ident, python_plugin, python_stub};
use serde::de::DeserializeOwned;

use crate::InterfaceInfo;

/// A WIT type.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ty {
    /// `bool`
    Bool,
    /// `s8`
    S8,
    /// `s16`
    S16,
    /// `s32`
    S32,
    /// `s64`
    S64,
    /// `u8`
    U8,
    /// `u16`
    U16,
    /// `u32`
    U32,
    /// `u64`
    U64,
    /// `f32`
    F32,
    /// `f64`
    F64,
    /// `char`
    Char,
    /// `string`
    String,
    /// `list<T>`
    List(Box<Ty>),
    /// `option<T>`
    Option(Box<Ty>),
    /// `tuple<…>`
    Tuple(Vec<Ty>),
    /// A record, variant or enum defined in the interface, by WIT name.
    Named(String),
    /// No value: `()` (a method without a result, `Ok(())`).
    Unit,
    /// `result<ok, err>` (`Ty::Unit` for a side without a value): a
    /// `Result` stream item.
    Result(Box<Ty>, Box<Ty>),
    /// `Stream<T>` as a whole argument or result (or `Ok` type): becomes a
    /// resource (see [`WitBuilder::method`]).
    Stream(Box<Ty>),
}

impl Ty {
    fn render(&self) -> String {
        match self {
            Ty::Bool => "bool".into(),
            Ty::S8 => "s8".into(),
            Ty::S16 => "s16".into(),
            Ty::S32 => "s32".into(),
            Ty::S64 => "s64".into(),
            Ty::U8 => "u8".into(),
            Ty::U16 => "u16".into(),
            Ty::U32 => "u32".into(),
            Ty::U64 => "u64".into(),
            Ty::F32 => "f32".into(),
            Ty::F64 => "f64".into(),
            Ty::Char => "char".into(),
            Ty::String => "string".into(),
            Ty::List(t) => format!("list<{}>", t.render()),
            Ty::Option(t) => format!("option<{}>", t.render()),
            Ty::Tuple(ts) => {
                let ts: Vec<String> = ts.iter().map(Ty::render).collect();
                format!("tuple<{}>", ts.join(", "))
            }
            Ty::Named(n) => ident(n),
            Ty::Unit => "_".into(),
            Ty::Stream(t) => format!("stream<{}>", t.render()),
            Ty::Result(ok, err) => match (&**ok, &**err) {
                (Ty::Unit, Ty::Unit) => "result".into(),
                (ok, Ty::Unit) => format!("result<{}>", ok.render()),
                (Ty::Unit, err) => format!("result<_, {}>", err.render()),
                (ok, err) => format!("result<{}, {}>", ok.render(), err.render()),
            },
        }
    }
}

/// A named type's definition.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Def {
    /// `record { field: T, … }`
    Record(Vec<(String, Ty)>),
    /// `variant { case(T), case, … }`
    Variant(Vec<(String, Option<Ty>)>),
    /// `enum { case, … }`
    Enum(Vec<String>),
}

/// An interface (or one of its types) has no WIT form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct WitError {
    message: String,
}

impl WitError {
    /// A type or position fidius cannot map to WIT.
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(message)
    }

    fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// What a method returns, as the WIT builder sees it.
#[derive(Debug, Clone)]
pub enum Returns {
    /// A plain value (`Ty::Unit` for none).
    Plain(Ty),
    /// `Result<ok, err>`.
    Fallible(Ty, Ty),
}

/// Builds an interface's WIT; driven by the code `#[plugin_interface]`
/// emits in [`WitInterface::wit`].
#[derive(Debug)]
pub struct WitBuilder {
    info: &'static InterfaceInfo,
    registry: trace::Registry,
    funcs: Vec<String>,
    /// Resources for returned streams: name, item type, method.
    outputs: Vec<(String, Ty, String)>,
    /// Resources for argument streams: name, item type, method, argument.
    inputs: Vec<(String, Ty, String, String)>,
    /// The declared configuration type (`config = C`).
    config: Option<Ty>,
    /// The methods' types, streams as [`Ty::Stream`].
    methods: Vec<MethodModel>,
}

/// An interface's types, structured: what a backend that converts values
/// itself (Python) is guided by.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Model {
    /// The records, variants and enums, by WIT name.
    pub defs: Vec<(String, Def)>,
    /// The methods, in the trait's vtable order.
    pub methods: Vec<MethodModel>,
    /// The declared configuration type (`config = C`).
    pub config: Option<Ty>,
}

impl Model {
    /// The definition of named type `name`.
    pub fn def(&self, name: &str) -> Option<&Def> {
        self.defs.iter().find(|(n, _)| n == name).map(|(_, d)| d)
    }
}

/// One method of a [`Model`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MethodModel {
    /// The method's Rust name.
    pub name: String,
    /// Its parameters: Rust name and type.
    pub params: Vec<(String, Ty)>,
    /// What it returns.
    pub returns: Returns,
}

impl WitBuilder {
    /// Starts the WIT of `info`.
    pub fn new(info: &'static InterfaceInfo) -> Self {
        Self {
            info,
            registry: trace::Registry::default(),
            funcs: Vec::new(),
            outputs: Vec::new(),
            inputs: Vec::new(),
            config: None,
            methods: Vec::new(),
        }
    }

    /// The interface's types, structured.
    pub fn model(self) -> Model {
        Model {
            defs: self
                .registry
                .defs
                .into_iter()
                .map(|(name, _, def)| (name, def))
                .collect(),
            methods: self.methods,
            config: self.config,
        }
    }

    /// Declares the interface's configuration type (`#[plugin_interface(config
    /// = C)]`): `plugin.create` then takes it typed, instead of its wire
    /// encoding as `list<u8>`.
    ///
    /// # Errors
    /// [`WitError`] when the type is `()` or maps to `list<u8>` (which
    /// would read as the wire encoding: wrap it in a struct).
    pub fn config(&mut self, ty: Ty) -> Result<(), WitError> {
        if ty == Ty::Unit || ty == Ty::List(Box::new(Ty::U8)) {
            return Err(WitError::new(format!(
                "the configuration type of `{}` is `{}` in WIT, which `create` cannot take                  typed; use a struct",
                self.info.name,
                ty.render()
            )));
        }
        self.config = Some(ty);
        Ok(())
    }

    /// The WIT type of `T`, registering the records, variants and enums it
    /// uses.
    ///
    /// # Errors
    /// [`WitError`] naming `what` (e.g. "argument `shape` of `describe`")
    /// when `T` has no WIT form.
    pub fn ty<T: DeserializeOwned>(&mut self, what: &str) -> Result<Ty, WitError> {
        self.registry.trace::<T>(what)
    }

    /// Adds method `name`. A `Stream<T>` argument becomes an imported
    /// resource `<method>-<argument>` (interface `sources`, which the host
    /// implements) and a returned stream an exported resource
    /// `<method>-stream`; each has `next: func(max: u32) ->
    /// result<list<T>, string>`, which hands out up to `max` items and an
    /// empty list at the end.
    ///
    /// # Errors
    /// [`WitError`] when an argument is `()`.
    pub fn method(
        &mut self,
        name: &str,
        params: Vec<(&str, Ty)>,
        returns: Returns,
    ) -> Result<(), WitError> {
        self.methods.push(MethodModel {
            name: name.to_owned(),
            params: params
                .iter()
                .map(|(p, t)| ((*p).to_owned(), t.clone()))
                .collect(),
            returns: returns.clone(),
        });
        let mut params_text = Vec::new();
        for (param, ty) in params {
            let ty = match ty {
                Ty::Unit => {
                    return Err(WitError::new(format!(
                        "argument `{param}` of `{name}`: `()` cannot be an argument in WIT"
                    )));
                }
                Ty::Stream(item) => {
                    let resource = format!("{}-{}", kebab(name), kebab(param));
                    self.inputs
                        .push((resource.clone(), *item, name.to_owned(), param.to_owned()));
                    Ty::Named(resource)
                }
                ty => ty,
            };
            params_text.push(format!("{}: {}", ident(&kebab(param)), ty.render()));
        }
        let mut output = |ty: Ty| match ty {
            Ty::Stream(item) => {
                let resource = format!("{}-stream", kebab(name));
                self.outputs
                    .push((resource.clone(), *item, name.to_owned()));
                Ty::Named(resource)
            }
            ty => ty,
        };
        let returns = match returns {
            Returns::Plain(ty) => Returns::Plain(output(ty)),
            Returns::Fallible(ok, err) => Returns::Fallible(output(ok), err),
        };
        let result = match returns {
            Returns::Plain(Ty::Unit) => String::new(),
            Returns::Plain(ty) => format!(" -> {}", ty.render()),
            Returns::Fallible(Ty::Unit, Ty::Unit) => " -> result".into(),
            Returns::Fallible(ok, Ty::Unit) => format!(" -> result<{}>", ok.render()),
            Returns::Fallible(ok, err) => format!(" -> result<{}, {}>", ok.render(), err.render()),
        };
        self.funcs.push(format!(
            "{}: func({}){};",
            ident(&kebab(name)),
            params_text.join(", "),
            result
        ));
        Ok(())
    }

    /// The WIT text.
    ///
    /// # Errors
    /// [`WitError`] when the interface's WIT name is one of the interfaces
    /// fidius adds to every package.
    pub fn finish(self) -> Result<String, WitError> {
        let info = self.info;
        let iface = kebab(info.name);
        if RESERVED.contains(&iface.as_str()) {
            return Err(WitError::new(format!(
                "interface `{}`: its WIT name `{iface}` is taken by an interface fidius adds \
                 to every package ({}); rename the trait",
                info.name,
                RESERVED.join(", ")
            )));
        }
        let mut out = String::new();
        let _ = writeln!(
            out,
            "// Generated by `cargo fidius wit` from the #[plugin_interface] trait `{}`.\n\
             // Do not edit: regenerate it when the interface changes.\n\
             // fidius-interface: {} version {} hash {:#018x}\n",
            info.name, info.name, info.version, info.hash
        );
        let _ = writeln!(out, "package fidius:{iface}@{}.0.0;\n", info.version);
        let mut defs = String::new();
        for (name, _, def) in &self.registry.defs {
            render_def(&mut defs, name, def);
        }
        let names: Vec<String> = self
            .registry
            .defs
            .iter()
            .map(|(n, _, _)| ident(n))
            .collect();
        // Argument streams are resources the host implements, so they live
        // in an imported interface; the types they carry then move to a
        // `types` interface both can use. So do they when `plugin.create`
        // takes the configuration typed.
        let split = !self.inputs.is_empty();
        let shared = !names.is_empty() && (split || self.config.is_some());
        if shared {
            let _ = writeln!(out, "/// The types of the `{}` interface.", info.name);
            let _ = writeln!(out, "interface types {{");
            out.push_str(&defs);
            let _ = writeln!(out, "}}\n");
        }
        if split {
            let _ = writeln!(
                out,
                "/// The argument streams of the `{}` interface, which the host produces.",
                info.name
            );
            let _ = writeln!(out, "interface sources {{");
            if !names.is_empty() {
                let _ = writeln!(out, "    use types.{{{}}};\n", names.join(", "));
            }
            for (resource, item, method, param) in &self.inputs {
                let _ = writeln!(
                    out,
                    "    /// Argument `{param}` of `{method}`: `next` hands out up to `max` items\n    \
                     /// (at least one), an empty list at the end of the stream."
                );
                render_resource(&mut out, resource, item);
            }
            let _ = writeln!(out, "}}\n");
        }
        let _ = writeln!(out, "/// The `{}` interface.", info.name);
        let _ = writeln!(out, "interface {} {{", ident(&iface));
        if shared {
            let _ = writeln!(out, "    use types.{{{}}};", names.join(", "));
        }
        if split {
            let inputs: Vec<String> = self.inputs.iter().map(|(r, ..)| ident(r)).collect();
            let _ = writeln!(out, "    use sources.{{{}}};", inputs.join(", "));
        }
        if shared || split {
            out.push('\n');
        } else {
            out.push_str(&defs);
        }
        for (resource, item, method) in &self.outputs {
            let _ = writeln!(
                out,
                "    /// The stream `{method}` returns: `next` hands out up to `max` items (at\n    \
                 /// least one), an empty list at the end of the stream."
            );
            render_resource(&mut out, resource, item);
        }
        for (func, method) in self.funcs.iter().zip(info.methods) {
            if method.since.is_some() {
                let _ = writeln!(
                    out,
                    "    /// Optional: added in version {}.",
                    method.since.unwrap_or(0)
                );
            }
            let _ = writeln!(out, "    {func}");
        }
        let _ = writeln!(out, "}}\n");
        let create = match &self.config {
            Some(config) => {
                let uses = if shared {
                    format!("    use types.{{{}}};\n\n", names.join(", "))
                } else {
                    String::new()
                };
                format!(
                    "{uses}{}    /// Creates this instance's plugin object, once, before any other call:\n    \
                     /// the plugin named `plugin` (a component may hold several plugins\n    \
                     /// of the interface), with its configuration.\n    \
                     create: func(plugin: string, config: {}) -> result<_, create-error>;\n",
                    LIFECYCLE_ERRORS,
                    config.render()
                )
            }
            None => format!(
                "{LIFECYCLE_ERRORS}    /// Creates this instance's plugin object, once, before any other call:\n    \
                 /// the plugin named `plugin` (a component may hold several plugins of\n    \
                 /// the interface). `config` is the plugin's configuration encoded in\n    \
                 /// the fidius wire format (empty for plugins without one).\n    \
                 create: func(plugin: string, config: list<u8>) -> result<_, create-error>;\n"
            ),
        };
        let _ = writeln!(
            out,
            "/// How the fidius runtime sets a plugin up.\ninterface plugin {{"
        );
        out.push_str(&create);
        out.push_str(LIFECYCLE);
        let _ = writeln!(out, "\nworld {}-plugin {{", iface);
        let _ = writeln!(out, "    import host;");
        if split {
            let _ = writeln!(out, "    import sources;");
        }
        let _ = writeln!(out, "    export plugin;");
        let _ = writeln!(out, "    export {};", ident(&iface));
        let _ = writeln!(out, "}}");
        let _ = writeln!(
            out,
            "\n/// What Rust plugins built with fidius export: the plugin world plus\n\
             /// the `fast` shortcut.\n\
             world {iface}-rust-plugin {{\n    include {iface}-plugin;\n    export fast;\n}}"
        );
        Ok(out)
    }
}

/// The interfaces every fidius package has besides the trait's own.
const RESERVED: &[&str] = &["plugin", "fast", "host", "types", "sources"];

fn render_def(out: &mut String, name: &str, def: &Def) {
    match def {
        Def::Record(fields) => {
            let _ = writeln!(out, "    record {} {{", ident(name));
            for (f, t) in fields {
                let _ = writeln!(out, "        {}: {},", ident(f), t.render());
            }
        }
        Def::Variant(cases) => {
            let _ = writeln!(out, "    variant {} {{", ident(name));
            for (c, t) in cases {
                match t {
                    Some(t) => {
                        let _ = writeln!(out, "        {}({}),", ident(c), t.render());
                    }
                    None => {
                        let _ = writeln!(out, "        {},", ident(c));
                    }
                }
            }
        }
        Def::Enum(cases) => {
            let _ = writeln!(out, "    enum {} {{", ident(name));
            for c in cases {
                let _ = writeln!(out, "        {},", ident(c));
            }
        }
    }
    let _ = writeln!(out, "    }}\n");
}

fn render_resource(out: &mut String, name: &str, item: &Ty) {
    let _ = writeln!(out, "    resource {} {{", ident(name));
    let _ = writeln!(
        out,
        "        next: func(max: u32) -> result<list<{}>, string>;",
        item.render()
    );
    let _ = writeln!(out, "    }}\n");
}

/// The start of interface `plugin`: the errors of `create`.
const LIFECYCLE_ERRORS: &str = "    /// A plugin's own error, as fidius's `PluginError`.
    record rejection {
        code: string,
        message: string,
        details: list<tuple<string, string>>,
    }

    /// Why `create` failed.
    variant create-error {
        /// The configuration did not decode as the plugin's config type.
        config(string),
        /// The plugin's constructor returned an error.
        rejected(rejection),
        /// The component holds no plugin of this name for the interface.
        unknown-plugin(string),
    }

";

/// The rest of interface `plugin` after `create`, and the interfaces every
/// fidius world has besides the trait's own.
const LIFECYCLE: &str = "
    /// Drops the plugin object (its `Drop` runs) when the host lets go of
    /// the instance.
    destroy: func();
}

/// A shortcut that Rust plugins built with fidius also export (world
/// `<interface>-rust-plugin`); guests in other languages leave it out.
interface fast {
    /// Calls method number `method` (its position among the interface's
    /// functions above) with `args`, its arguments in the fidius wire format
    /// one after another; returns the result in the wire format (for a
    /// `result<…>` function: the whole result), or why the arguments did not
    /// decode.
    /// Stream arguments are `u32` positions in `streams`, the handles of the
    /// host's streams (pulled with `host.stream-next`); a returned stream is
    /// a `u32` handle for `stream-next` here.
    call: func(method: u32, args: list<u8>, streams: list<u32>) -> result<list<u8>, string>;

    /// Calls method number `method` whose parameters (at most four) and
    /// result (if any) are all `bool`, integers, floats or `char`, with
    /// each argument as the bits of a `u64` (signed integers sign-extended,
    /// floats their IEEE bits, `bool` 0 or 1, `char` its code point; unused
    /// ones 0); returns the result the same way (0 for none). No memory
    /// crosses: the cheapest call there is.
    scalar: func(method: u32, a: u64, b: u64, c: u64, d: u64) -> u64;

    /// Up to `max` items (at least one) of the plugin's stream `handle`,
    /// in the wire format one after another; `none` at its end.
    stream-next: func(handle: u32, max: u32) -> result<option<list<u8>>, string>;

    /// Cancels the plugin's stream `handle`.
    stream-drop: func(handle: u32);
}

/// What the fidius runtime offers every plugin.
interface host {
    /// Records the message of a panic about to abort the guest.
    panicked: func(message: string);

    /// Calls method number `method` of the interface's host interface (for
    /// `#[plugin_interface(host = …)]`), arguments and result in the fidius
    /// wire format as in `fast.call`.
    call: func(method: u32, args: list<u8>) -> result<list<u8>, string>;

    /// Up to `max` items (at least one) of the host's stream `handle` (a
    /// stream argument of `fast.call`), in the wire format; `none` at its
    /// end.
    stream-next: func(handle: u32, max: u32) -> result<option<list<u8>>, string>;

    /// Lets go of the host's stream `handle` (its producer stops).
    stream-drop: func(handle: u32);

    /// A request for items of a stream the plugin passed to a host method.
    record need {
        /// The stream's position among the method's stream arguments.
        position: u32,
        /// The most items to send (at least one is wanted).
        max: u32,
    }

    /// What the host asks while a host method that takes streams runs.
    variant call-event {
        /// Send items of a stream argument with `call-feed`.
        need(need),
        /// The host let go of stream argument number `n`: drop its
        /// producer, then answer `call-feed(ack)`.
        dropped(u32),
        /// The method returned: its result as `call` returns it.
        done(result<list<u8>, string>),
    }

    /// The plugin's answer to a `call-event`.
    variant feed {
        /// Some items (at least one), in the wire format one after another.
        items(list<u8>),
        /// The stream has no more items.
        end,
        /// The stream failed with this message.
        failed(string),
        /// Acknowledges `dropped`.
        ack,
    }

    /// `call` for a host method with stream arguments: they are `u32`
    /// positions among `streams` streams the plugin produces, which the
    /// method pulls while it runs. Returns the first event; the plugin
    /// answers each `need` or `dropped` with `call-feed` until `done`.
    call-start: func(method: u32, args: list<u8>, streams: u32) -> call-event;

    /// Answers the last event of the running `call-start`; returns the
    /// next.
    call-feed: func(answer: feed) -> call-event;
}
";

/// The hash recorded in a WIT file's `// fidius-interface:` header, if any.
/// `const` so the wasm glue can refuse a stale file at compile time.
pub const fn recorded_hash(wit: &str) -> Option<u64> {
    const TAG: &[u8] = b" hash 0x";
    let bytes = wit.as_bytes();
    let mut i = 0;
    while i + TAG.len() + 16 <= bytes.len() {
        let mut j = 0;
        while j < TAG.len() && bytes[i + j] == TAG[j] {
            j += 1;
        }
        if j == TAG.len() {
            let mut value: u64 = 0;
            let mut k = 0;
            while k < 16 {
                let c = bytes[i + j + k];
                let digit = match c {
                    b'0'..=b'9' => c - b'0',
                    b'a'..=b'f' => c - b'a' + 10,
                    _ => return None,
                };
                value = (value << 4) | digit as u64;
                k += 1;
            }
            return Some(value);
        }
        i += 1;
    }
    None
}

/// Implemented by `#[plugin_interface]` for `dyn Trait`.
pub trait WitInterface {
    /// Traces the interface's types into a builder.
    ///
    /// # Errors
    /// As [`wit`](Self::wit).
    #[doc(hidden)]
    fn build() -> Result<WitBuilder, WitError>;

    /// The interface's WIT package.
    ///
    /// # Errors
    /// [`WitError`] naming the method and type that has no WIT form (e.g. a
    /// recursive type, `i128`, an untagged enum, a `Stream` argument).
    fn wit() -> Result<String, WitError> {
        Self::build()?.finish()
    }

    /// The interface's types, structured.
    ///
    /// # Errors
    /// As [`wit`](Self::wit).
    fn model() -> Result<Model, WitError> {
        Ok(Self::build()?.model())
    }
}

/// What an interface without a host interface (`Interface::Host = ()`)
/// has: no types.
impl WitInterface for () {
    fn build() -> Result<WitBuilder, WitError> {
        Err(WitError::new("no host interface"))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    use super::*;

    #[derive(Deserialize)]
    #[allow(dead_code)]
    enum Shape {
        Circle { radius: f64 },
        Rect(u32, u32),
        Named(String),
        Empty,
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    enum Mode {
        Fast,
        Slow,
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Input {
        shapes: Vec<Shape>,
        mode: Option<Mode>,
        data: Vec<u8>,
        tags: BTreeMap<String, u64>,
        pair: (i8, char),
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Tree {
        children: Vec<Tree>,
    }

    #[test]
    fn serde_types_become_wit_types() {
        let mut reg = trace::Registry::default();
        let ty = reg.trace::<Input>("input").unwrap();
        assert_eq!(ty, Ty::Named("input".into()));
        let defs: Vec<(String, Def)> = reg.defs.into_iter().map(|(n, _, d)| (n, d)).collect();
        let find = |n: &str| {
            defs.iter()
                .find(|(k, _)| k == n)
                .map(|(_, d)| d.clone())
                .unwrap()
        };
        assert_eq!(
            find("input"),
            Def::Record(vec![
                (
                    "shapes".into(),
                    Ty::List(Box::new(Ty::Named("shape".into())))
                ),
                (
                    "mode".into(),
                    Ty::Option(Box::new(Ty::Named("mode".into())))
                ),
                ("data".into(), Ty::List(Box::new(Ty::U8))),
                (
                    "tags".into(),
                    Ty::List(Box::new(Ty::Tuple(vec![Ty::String, Ty::U64])))
                ),
                ("pair".into(), Ty::Tuple(vec![Ty::S8, Ty::Char])),
            ])
        );
        assert_eq!(
            find("shape"),
            Def::Variant(vec![
                ("circle".into(), Some(Ty::Named("shape-circle".into()))),
                ("rect".into(), Some(Ty::Tuple(vec![Ty::U32, Ty::U32]))),
                ("named".into(), Some(Ty::String)),
                ("empty".into(), None),
            ])
        );
        assert_eq!(
            find("shape-circle"),
            Def::Record(vec![("radius".into(), Ty::F64)])
        );
        assert_eq!(find("mode"), Def::Enum(vec!["fast".into(), "slow".into()]));
    }

    #[test]
    fn types_without_a_wit_form_are_named_errors() {
        let mut reg = trace::Registry::default();
        let e = reg.trace::<Tree>("argument `t` of `f`").unwrap_err();
        assert!(e.to_string().contains("`Tree` contains itself"), "{e}");
        let e = reg.trace::<i128>("result of `g`").unwrap_err();
        assert_eq!(
            e.to_string(),
            "result of `g`: i128 cannot be mapped to a WIT type"
        );
        let e = reg.trace::<Result<u8, u8>>("x").unwrap_err();
        assert!(e.to_string().contains("only a method's return type"), "{e}");
    }

    #[test]
    fn fidius_own_interface_names_are_refused() {
        static HOST: InterfaceInfo = InterfaceInfo::new(
            "Host",
            1,
            "",
            crate::abi::BufferStrategy::PluginAllocated,
            &[],
        );
        let e = WitBuilder::new(&HOST).finish().unwrap_err();
        assert!(e.to_string().contains("`host` is taken"), "{e}");
    }

    #[test]
    fn the_recorded_hash_is_read_back() {
        let text = "// fidius-interface: Calc version 1 hash 0x00ab00cd00ef0012\n";
        assert_eq!(recorded_hash(text), Some(0x00ab00cd00ef0012));
        assert_eq!(recorded_hash("nothing"), None);
    }
}
