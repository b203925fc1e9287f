//! Typed Python stubs of an interface (`cargo fidius stub --python`): the
//! shapes Python plugins receive and return, as `TypedDict`s and
//! `Literal`s, a `Protocol` per interface, and the declaration constants,
//! so editors and type checkers know them. The mapping is the one the
//! Python backend converts by (`docs/src/python.md`).

use std::fmt::Write as _;

use super::names::upper_camel;
use super::{Def, Model, Returns, Ty};
use crate::InterfaceInfo;

/// `name` as a Python identifier: keywords get a trailing `_`.
pub fn python_ident(name: &str) -> String {
    const KEYWORDS: &[&str] = &[
        "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class",
        "continue", "def", "del", "elif", "else", "except", "finally", "for", "from", "global",
        "if", "import", "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return",
        "try", "while", "with", "yield",
    ];
    let name = name.replace('-', "_");
    if KEYWORDS.contains(&name.as_str()) {
        format!("{name}_")
    } else {
        name
    }
}

/// The Python type of `ty`; `arg` for a parameter (a stream argument is a
/// `fidius.Stream`, a returned stream any iterable).
/// Names the interface's own types with `prefix` (the stub module's name
/// and a dot, outside the stub module).
fn py_type(ty: &Ty, arg: bool) -> String {
    py_type_in(ty, arg, "")
}

fn py_type_in(ty: &Ty, arg: bool, prefix: &str) -> String {
    let py_type = |ty: &Ty, arg: bool| py_type_in(ty, arg, prefix);
    match ty {
        Ty::Bool => "bool".into(),
        Ty::S8 | Ty::S16 | Ty::S32 | Ty::S64 | Ty::U8 | Ty::U16 | Ty::U32 | Ty::U64 => "int".into(),
        Ty::F32 | Ty::F64 => "float".into(),
        Ty::Char | Ty::String => "str".into(),
        Ty::List(item) if **item == Ty::U8 => "bytes".into(),
        Ty::List(item) => format!("list[{}]", py_type(item, arg)),
        Ty::Option(inner) => format!("Optional[{}]", py_type(inner, arg)),
        Ty::Tuple(items) => {
            let items: Vec<String> = items.iter().map(|t| py_type(t, arg)).collect();
            format!("tuple[{}]", items.join(", "))
        }
        Ty::Named(name) => format!("\"{prefix}{}\"", upper_camel(name)),
        Ty::Unit => "None".into(),
        Ty::Result(ok, err) => format!(
            "dict[str, Union[{}, {}]]",
            py_type(ok, arg),
            py_type(err, arg)
        ),
        Ty::Stream(item) if arg => format!("Iterator[{}]", py_type(item, arg)),
        Ty::Stream(item) => format!("Iterable[{}]", py_type(item, arg)),
    }
}

/// A value of `ty` a freshly scaffolded method returns until it is filled
/// in (as `Default::default()` in a Rust scaffold).
fn python_default(model: &Model, ty: &Ty) -> String {
    match ty {
        Ty::Bool => "False".into(),
        Ty::S8 | Ty::S16 | Ty::S32 | Ty::S64 | Ty::U8 | Ty::U16 | Ty::U32 | Ty::U64 => "0".into(),
        Ty::F32 | Ty::F64 => "0.0".into(),
        Ty::Char => "\" \"".into(),
        Ty::String => "\"\"".into(),
        Ty::List(item) if **item == Ty::U8 => "b\"\"".into(),
        Ty::List(_) => "[]".into(),
        Ty::Option(_) | Ty::Unit => "None".into(),
        Ty::Tuple(items) => {
            let items: Vec<String> = items.iter().map(|t| python_default(model, t)).collect();
            format!(
                "({}{})",
                items.join(", "),
                if items.len() == 1 { "," } else { "" }
            )
        }
        Ty::Result(ok, _) => format!("{{\"Ok\": {}}}", python_default(model, ok)),
        Ty::Stream(_) => "iter(())".into(),
        Ty::Named(name) => match model.def(name) {
            Some(Def::Record(fields)) => {
                let fields: Vec<String> = fields
                    .iter()
                    .map(|(f, t)| {
                        format!("\"{}\": {}", f.replace('-', "_"), python_default(model, t))
                    })
                    .collect();
                format!("{{{}}}", fields.join(", "))
            }
            Some(Def::Enum(cases)) => cases
                .first()
                .map_or("None".into(), |c| format!("\"{}\"", upper_camel(c))),
            Some(Def::Variant(cases)) => match cases.first() {
                Some((case, None)) => format!("\"{}\"", upper_camel(case)),
                Some((case, Some(t))) => {
                    format!(
                        "{{\"{}\": {}}}",
                        upper_camel(case),
                        python_default(model, t)
                    )
                }
                None => "None".into(),
            },
            None => "None".into(),
        },
    }
}

/// The Python return annotation of a method.
fn python_returns(returns: &Returns, prefix: &str) -> String {
    match returns {
        Returns::Plain(t) | Returns::Fallible(t, _) => py_type_in(t, false, prefix),
    }
}

/// The stub module of interface `info` (and of its host interface, when it
/// has one).
pub fn python_stub(
    info: &InterfaceInfo,
    model: &Model,
    host: Option<(&InterfaceInfo, &Model)>,
) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "\"\"\"Typed stubs of the fidius interface `{name}` (version {version}), for\n\
         Python plugins, editors and type checkers. Generated by `cargo fidius stub\n\
         --python` from the #[plugin_interface] trait: do not edit, regenerate it.\n\
         \"\"\"\n\n\
         from __future__ import annotations\n\n\
         from typing import Iterable, Iterator, Literal, Optional, Protocol, TypedDict, Union\n\n\
         import fidius\n\n\
         INTERFACE = \"{name}\"\n\
         VERSION = {version}\n\
         HASH = {hash:#018x}\n\n\n\
         def plugin(name: Optional[str] = None):\n    \
             \"\"\"`@fidius.plugin` declaring this interface.\"\"\"\n    \
             return fidius.plugin(interface=INTERFACE, version=VERSION, hash=HASH, name=name)\n",
        name = info.name,
        version = info.version,
        hash = info.hash,
    );
    let mut defs: Vec<(String, Def)> = model.defs.clone();
    if let Some((_, host_model)) = host {
        for (name, def) in &host_model.defs {
            if !defs.iter().any(|(n, _)| n == name) {
                defs.push((name.clone(), def.clone()));
            }
        }
    }
    for (name, def) in &defs {
        let class = upper_camel(name);
        out.push_str("\n\n");
        match def {
            Def::Record(fields) => {
                let _ = writeln!(out, "class {class}(TypedDict):");
                if fields.is_empty() {
                    out.push_str("    pass\n");
                }
                for (field, ty) in fields {
                    let field = field.replace('-', "_");
                    if python_ident(&field) != field {
                        // A keyword: not writable as a class attribute.
                        let _ = writeln!(
                            out,
                            "    # `{field}` ({}): a Python keyword",
                            py_type(ty, false)
                        );
                        continue;
                    }
                    let _ = writeln!(out, "    {field}: {}", py_type(ty, false));
                }
            }
            Def::Enum(cases) => {
                let cases: Vec<String> = cases
                    .iter()
                    .map(|c| format!("\"{}\"", upper_camel(c)))
                    .collect();
                let _ = writeln!(out, "{class} = Literal[{}]", cases.join(", "));
            }
            Def::Variant(cases) => {
                let mut members = Vec::new();
                for (case, payload) in cases {
                    let case = upper_camel(case);
                    match payload {
                        None => members.push(format!("Literal[\"{case}\"]")),
                        Some(ty) => {
                            // A one-key dict: `{"Case": payload}`.
                            let _ = writeln!(
                                out,
                                "{class}{case}Case = TypedDict(\"{class}{case}Case\", {{\"{case}\": {}}})",
                                py_type(ty, false)
                            );
                            members.push(format!("\"{class}{case}Case\""));
                        }
                    }
                }
                let _ = writeln!(out, "{class} = Union[{}]", members.join(", "));
            }
        }
    }
    let protocol = |out: &mut String, class: &str, doc: &str, model: &Model| {
        let _ = writeln!(out, "\n\nclass {class}(Protocol):\n    \"\"\"{doc}\"\"\"\n");
        for m in &model.methods {
            let params: String = m
                .params
                .iter()
                .map(|(p, t)| format!(", {}: {}", python_ident(p), py_type(t, true)))
                .collect();
            let body = match &m.returns {
                Returns::Fallible(_, Ty::Named(e)) if e == "plugin-error" => {
                    "\n        \"\"\"Raise `fidius.PluginError` for its error.\"\"\"\n        ..."
                }
                Returns::Fallible(..) => {
                    "\n        \"\"\"Raise `fidius.Err(value)` for its error.\"\"\"\n        ..."
                }
                Returns::Plain(_) => " ...",
            };
            let _ = writeln!(
                out,
                "    def {}(self{params}) -> {}:{body}\n",
                m.name,
                python_returns(&m.returns, "")
            );
        }
    };
    protocol(
        &mut out,
        &upper_camel(&super::kebab(info.name)),
        &format!("What plugins of `{}` implement.", info.name),
        model,
    );
    if let Some((host_info, host_model)) = host {
        protocol(
            &mut out,
            &upper_camel(&super::kebab(host_info.name)),
            &format!(
                "The host object a `{}` plugin's constructor gets (`host = {}`).",
                info.name, host_info.name
            ),
            host_model,
        );
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

/// A Python plugin of interface `info` that implements every required
/// method with a default value (what `cargo fidius new plugin --lang
/// python` writes), importing the interface's stub module `stubs`.
pub fn python_plugin(info: &InterfaceInfo, model: &Model, host: bool, stubs: &str) -> String {
    let mut out = String::new();
    let iface = info.name;
    let _ = write!(
        out,
        "\"\"\"A Python plugin of the `{iface}` interface.\"\"\"\n\n\
         from __future__ import annotations\n\n\
         from typing import Iterable, Iterator, Optional, Union  # noqa: F401 (annotations)\n\n\
         import {stubs} as api\n\n\n\
         @api.plugin()\n\
         class Plugin:\n    \
         \"\"\"Fill in the methods; each returns a default value until then.\"\"\"\n"
    );
    let mut init = Vec::new();
    if let Some(config) = &model.config {
        init.push(format!("config: {}", py_type_in(config, true, "api.")));
    }
    if host {
        init.push("host".to_owned());
    }
    if !init.is_empty() {
        let _ = write!(out, "\n    def __init__(self, {}):\n", init.join(", "));
        if model.config.is_some() {
            out.push_str("        self.config = config\n");
        }
        if host {
            out.push_str("        self.host = host\n");
        }
    }
    let required = info.required_count();
    for m in model.methods.iter().take(required) {
        let params: String = m
            .params
            .iter()
            .map(|(p, t)| format!(", {}: {}", python_ident(p), py_type_in(t, true, "api.")))
            .collect();
        let value = match &m.returns {
            Returns::Plain(t) | Returns::Fallible(t, _) => python_default(model, t),
        };
        let _ = write!(
            out,
            "\n    def {}(self{params}) -> {}:\n        return {value}\n",
            m.name,
            python_returns(&m.returns, "api.")
        );
    }
    out
}
