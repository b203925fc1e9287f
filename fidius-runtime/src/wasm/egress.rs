//! Outbound HTTP for sandboxed plugins: `wasi:http` (wasmtime-wasi-http)
//! with every request passed through the host's egress hook first. Without
//! a hook (HTTP not granted) every request is denied.

use std::future::Future;

use http::{HeaderName, HeaderValue, Method, Uri};
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use super::capabilities::{Egress, EgressHook, EgressRequest};

/// The hooks a store's `wasi:http` runs with.
pub(super) struct Hooks {
    pub(super) egress: Option<EgressHook>,
}

type Sent = Box<
    dyn Future<
            Output = wasmtime_wasi_http::Result<(
                http::Response<WasiBody>,
                Box<dyn Future<Output = Result<(), Error>> + Send>,
            )>,
        > + Send,
>;

impl Hooks {
    /// The hook's verdict, with its changes applied to `request`.
    fn broker(&self, request: &mut http::Request<WasiBody>) -> Result<(), String> {
        let Some(EgressHook(hook)) = &self.egress else {
            return Err("HTTP is not granted to this plugin".into());
        };
        let mut view = EgressRequest {
            method: request.method().as_str().to_owned(),
            url: request.uri().to_string(),
            headers: request
                .headers()
                .iter()
                .map(|(n, v)| {
                    (
                        n.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
        };
        let before = view.clone();
        match hook(&mut view) {
            Egress::Deny(reason) => return Err(reason),
            Egress::Allow if view == before => return Ok(()),
            Egress::Allow => {}
        }
        // The hook rewrote the request.
        *request.method_mut() = Method::from_bytes(view.method.as_bytes())
            .map_err(|e| format!("the egress hook set the method {:?}: {e}", view.method))?;
        let uri: Uri = view
            .url
            .parse()
            .map_err(|e| format!("the egress hook set the URL {:?}: {e}", view.url))?;
        if uri.authority() != request.uri().authority()
            && let Some(authority) = uri.authority()
        {
            // The `host` header follows the new URL.
            let host = HeaderValue::from_str(authority.as_str())
                .map_err(|e| format!("the egress hook set the URL {:?}: {e}", view.url))?;
            request.headers_mut().insert(http::header::HOST, host);
            view.headers
                .retain(|(n, _)| !n.eq_ignore_ascii_case("host"));
        }
        *request.uri_mut() = uri;
        let headers = request.headers_mut();
        let host = headers.remove(http::header::HOST);
        headers.clear();
        if let Some(host) = host {
            headers.insert(http::header::HOST, host);
        }
        for (name, value) in &view.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| format!("the egress hook set the header name {name:?}: {e}"))?;
            let value = HeaderValue::from_str(value)
                .map_err(|e| format!("the egress hook set a value of `{name}`: {e}"))?;
            headers.append(name, value);
        }
        Ok(())
    }
}

impl WasiHttpHooks for Hooks {
    fn send_request(
        &mut self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Sent {
        drop(fut);
        let verdict = self.broker(&mut request);
        Box::new(async move {
            if let Err(reason) = verdict {
                tracing::debug!(
                    target: "fidius::egress",
                    method = %request.method(),
                    url = %request.uri(),
                    %reason,
                    "denied"
                );
                return Err(Error::HttpRequestDenied);
            }
            use http_body_util::BodyExt;
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = Result<(), Error>> + Send>,
            ))
        })
    }
}
