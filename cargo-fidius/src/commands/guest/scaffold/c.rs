//! The C skeleton: every prototype of the header `wit-bindgen c` writes
//! that the plugin must define, with a default body.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context as _, bail};
use wit_parser::TypeDefKind;

use super::{Api, snake};

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

pub(super) fn c(
    api: &Api,
    wit_file: &Path,
    trait_name: &str,
    plugin: &str,
) -> anyhow::Result<String> {
    let world = format!("{}-plugin", api.iface);
    let (mut resolve, world_id) = super::super::componentize::resolve(wit_file, &world)?;
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
