//! Run-time helpers for the WebAssembly component glue that `#[plugin_impl]`
//! emits on `wasm32` targets (see `fidius-derive/src/wasm_glue.rs`).

use std::any::Any;

use serde::{Serialize, de::DeserializeOwned};

/// Converts between an interface type and the `wit-bindgen` type generated
/// from its WIT: identical types move as they are, others go through the
/// wire format, where both have the same encoding by construction.
///
/// # Panics
/// When the shapes differ, i.e. the WIT is stale: the guest traps with a
/// message naming `what` and telling how to regenerate it.
pub fn transcode<A: Serialize + 'static, B: DeserializeOwned + 'static>(value: A, what: &str) -> B {
    let mut slot = Some(value);
    if let Some(same) = (&mut slot as &mut dyn Any).downcast_mut::<Option<B>>()
        && let Some(v) = same.take()
    {
        return v;
    }
    let result = slot
        .as_ref()
        .ok_or_else(|| "value already taken".to_owned())
        .and_then(|v| crate::wire::encode(v).map_err(|e| e.to_string()))
        .and_then(|bytes| crate::wire::decode::<B>(&bytes).map_err(|e| e.to_string()));
    match result {
        Ok(b) => b,
        Err(e) => panic!(
            "fidius: {what} does not match the interface's WIT ({e}); regenerate it with \
             `cargo fidius wit`"
        ),
    }
}

/// Takes the next wire-format argument of a `fast.call` off `rest`.
///
/// # Errors
/// The decode error, naming the argument.
pub fn fast_arg<T: DeserializeOwned>(rest: &mut &[u8], what: &str) -> Result<T, String> {
    match postcard::take_from_bytes::<T>(rest) {
        Ok((value, tail)) => {
            *rest = tail;
            Ok(value)
        }
        Err(e) => Err(format!("{what}: {e}")),
    }
}

/// [`fast_arg`] for a byte buffer, one copy.
///
/// # Errors
/// The decode error, naming the argument.
pub fn fast_bytes<'a>(rest: &mut &'a [u8], what: &str) -> Result<&'a [u8], String> {
    crate::wire::take_bytes(rest).map_err(|e| format!("{what}: {e}"))
}

/// [`fast_ret`] for a `Vec<u8>` result, one copy.
pub fn fast_ret_bytes(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    crate::wire::encode_bytes_into(value, &mut out);
    out
}

/// Checks that a `fast.call` used all its argument bytes.
///
/// # Errors
/// How many bytes were left.
pub fn fast_end(rest: &[u8]) -> Result<(), String> {
    if rest.is_empty() {
        Ok(())
    } else {
        Err(format!("{} bytes after the last argument", rest.len()))
    }
}

/// Encodes a `fast.call` result.
///
/// # Panics
/// When the value's `Serialize` impl fails (the guest traps with the
/// message, which the host reports).
pub fn fast_ret<R: Serialize>(value: &R, what: &str) -> Vec<u8> {
    match crate::wire::encode(value) {
        Ok(bytes) => bytes,
        Err(e) => panic!("fidius: cannot encode the {what}: {e}"),
    }
}

/// Runs a host method for a sandboxed plugin, turning a panic into the
/// error the plugin's call reports.
///
/// # Errors
/// `panicked: <message>`.
pub fn catch_host_panic<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "<non-string panic payload>".into());
        format!("{PANIC_PREFIX}{message}")
    })
}

/// How [`catch_host_panic`] marks a panic, so the plugin side reports
/// `CallError::Panic`.
pub const PANIC_PREFIX: &str = "panicked: ";

/// A client for the host's interface inside a WASM plugin: its calls go
/// through the `host.call` import (`call`).
pub fn wasm_host_client<P: crate::PluginClient>(
    plugin: &str,
    call: fn(u32, &[u8]) -> Result<Vec<u8>, String>,
) -> P {
    let info = &<P::Interface as crate::Interface>::INFO;
    let slots: Vec<Option<u32>> = (0..info.methods.len() as u32).map(Some).collect();
    let backend = std::sync::Arc::new(HostCalls { call });
    P::from_instance(crate::__private::Instance::from_dynamic(
        backend, plugin, &slots,
    ))
}

struct HostCalls {
    call: fn(u32, &[u8]) -> Result<Vec<u8>, String>,
}

impl crate::__private::DynInstance for HostCalls {
    fn call(
        &self,
        index: usize,
        name: &'static str,
        args: &[u8],
    ) -> Result<Vec<u8>, crate::CallError> {
        let index = u32::try_from(index).map_err(|_| crate::CallError::Protocol {
            method: name,
            detail: "method index out of range".into(),
        })?;
        (self.call)(index, args).map_err(|e| match e.strip_prefix(PANIC_PREFIX) {
            Some(message) => crate::CallError::Panic {
                method: name,
                message: message.to_owned(),
            },
            None => crate::CallError::Protocol {
                method: name,
                detail: e,
            },
        })
    }
}

/// Decodes a plugin's configuration; the message names the config type.
///
/// # Errors
/// The decode error, prefixed with the type's name.
pub fn wasm_config<C: DeserializeOwned>(bytes: &[u8]) -> Result<C, String> {
    crate::wire::decode::<C>(bytes)
        .map_err(|e| format!("`{}`: {}", core::any::type_name::<C>(), e.message()))
}

/// Makes panics report their message to the host before the guest traps.
pub fn wasm_install_panic_hook(report: fn(&str)) {
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("Box<dyn Any>");
        report(message);
    }));
}

/// An optional method the plugin does not implement was called anyway.
pub fn wasm_not_implemented(method: &str) -> ! {
    panic!("fidius: `{method}` is not implemented by this plugin (its capability bit is clear)")
}

/// A method was called before `create`.
pub fn wasm_not_created(plugin: &str) -> ! {
    panic!("fidius: plugin `{plugin}` was called before the runtime created it")
}

/// Whether a WIT text's `// fidius-interface:` header records `hash`.
pub const fn wit_hash_matches(wit: &str, hash: u64) -> bool {
    matches!(crate::wit::recorded_hash(wit), Some(h) if h == hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, serde::Deserialize, Debug, PartialEq)]
    struct A {
        x: i64,
        tags: Vec<String>,
    }

    #[derive(Serialize, serde::Deserialize, Debug, PartialEq)]
    struct B {
        renamed: i64,
        labels: Vec<String>,
    }

    #[test]
    fn same_shapes_transcode_and_same_types_move() {
        let b: B = transcode(
            A {
                x: -3,
                tags: vec!["t".into()],
            },
            "x",
        );
        assert_eq!(
            b,
            B {
                renamed: -3,
                labels: vec!["t".into()]
            }
        );
        let v: Vec<u8> = transcode(vec![1u8, 2, 3], "bytes");
        assert_eq!(v, [1, 2, 3]);
    }

    #[test]
    #[should_panic(expected = "does not match the interface's WIT")]
    fn different_shapes_name_the_value() {
        let _: B = transcode(7u8, "argument `a` of `f`");
    }
}
