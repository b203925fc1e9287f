//! Rust names → WIT names, and WIT names → the Rust names `wit-bindgen`
//! gives them. Shared verbatim (`#[path]`) with `fidius-derive`, which must
//! spell the bindings' type names exactly as the WIT generator chose them.

/// `CheckError` → `check-error`, `min_area` → `min-area`, `HTTPServer` →
/// `http-server`. Digits stay attached to the word before them (`x2` → `x2`,
/// `value_2` → `value2`) because a WIT word cannot start with a digit.
pub fn kebab(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c == '_' || c == '-' {
            if !out.is_empty() && !out.ends_with('-') {
                out.push('-');
            }
            continue;
        }
        if c.is_ascii_digit() {
            if out.ends_with('-') {
                out.pop();
            }
            out.push(c);
            continue;
        }
        if c.is_uppercase() && i > 0 && !out.is_empty() && !out.ends_with('-') {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            if prev.is_lowercase() || prev.is_ascii_digit() || (prev.is_uppercase() && next_lower) {
                out.push('-');
            }
        }
        out.extend(c.to_lowercase());
    }
    while out.ends_with('-') {
        out.pop();
    }
    out
}

/// `check-error` → `CheckError`: what `wit-bindgen` names a WIT type
/// (and the Rust name of a variant or type it came from).
pub fn upper_camel(kebab: &str) -> String {
    let mut out = String::new();
    for word in kebab.split('-') {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            out.extend(first.to_uppercase());
            out.push_str(chars.as_str());
        }
    }
    out
}

/// WIT keywords, which must be written `%name`.
const KEYWORDS: &[&str] = &[
    "as",
    "async",
    "bool",
    "borrow",
    "char",
    "constructor",
    "enum",
    "error-context",
    "export",
    "f32",
    "f64",
    "flags",
    "from",
    "float32",
    "float64",
    "func",
    "future",
    "import",
    "include",
    "interface",
    "list",
    "map",
    "own",
    "option",
    "package",
    "record",
    "resource",
    "result",
    "s16",
    "s32",
    "s64",
    "s8",
    "static",
    "stream",
    "string",
    "tuple",
    "type",
    "u16",
    "u32",
    "u64",
    "u8",
    "use",
    "variant",
    "with",
    "world",
];

/// `name` as written in WIT source: `%` before keywords.
pub fn ident(kebab: &str) -> String {
    if KEYWORDS.contains(&kebab) {
        format!("%{kebab}")
    } else {
        kebab.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_names_become_kebab_case() {
        for (rust, wit) in [
            ("CheckError", "check-error"),
            ("min_area", "min-area"),
            ("HTTPServer", "http-server"),
            ("Point3D", "point3-d"),
            ("value_2", "value2"),
            ("x", "x"),
            ("TooSmall", "too-small"),
            ("count_up", "count-up"),
        ] {
            assert_eq!(kebab(rust), wit, "{rust}");
        }
    }

    #[test]
    fn bindings_names_round_trip_camel_case() {
        assert_eq!(upper_camel(&kebab("CheckError")), "CheckError");
        assert_eq!(upper_camel(&kebab("HTTPServer")), "HttpServer");
        assert_eq!(ident("type"), "%type");
        assert_eq!(ident("shape"), "shape");
    }
}
