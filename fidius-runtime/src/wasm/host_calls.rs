//! Host methods that take streams, called by a WASM plugin.
//!
//! The method pulls the plugin's streams while it runs, but the plugin's
//! instance is inside its own call (the one that called the host) and
//! cannot be entered again. So the method runs on a thread of its own, and
//! the plugin's thread serves it: `host.call-start` starts the method and
//! returns its first request; the guest answers each with `host.call-feed`,
//! pulling its local stream, until the method is done. Streams stay
//! pull-based and bounded: one batch crosses per request, and a stream the
//! method drops is dropped in the guest (its producer stops).
//!
//! Host threads calling back into the plugin's instance are refused as a
//! callback on the plugin's own thread is (see [`serving`]).

use std::cell::RefCell;
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};

use fidius_guest::__private::{BatchSource, OwnedStream};
use fidius_guest::CallError;
use wasmtime::StoreContextMut;
use wasmtime::component::{ComponentType, Lift, LinkerInstance, Lower};

use super::{HostCall, HostState};

/// What a host method's thread sends the plugin's thread.
enum ToPlugin {
    /// Up to `max` items of stream argument `position`.
    Need { position: u32, max: u32 },
    /// The method dropped stream argument `position`.
    Dropped(u32),
    /// A stream the method returned, for the store's stream table; the
    /// handle goes back on the sender.
    Keep(OwnedStream, SyncSender<u32>),
    /// The method returned.
    Done(Result<Vec<u8>, String>),
}

/// `host.call-event`.
#[derive(ComponentType, Lower)]
#[component(variant)]
pub(super) enum CallEvent {
    #[component(name = "need")]
    Need(Need),
    #[component(name = "dropped")]
    Dropped(u32),
    #[component(name = "done")]
    Done(Result<Vec<u8>, String>),
}

/// `host.need`.
#[derive(ComponentType, Lower)]
#[component(record)]
pub(super) struct Need {
    position: u32,
    max: u32,
}

/// `host.feed`.
#[derive(ComponentType, Lift)]
#[component(variant)]
pub(super) enum Feed {
    #[component(name = "items")]
    Items(Vec<u8>),
    #[component(name = "end")]
    End,
    #[component(name = "failed")]
    Failed(String),
    #[component(name = "ack")]
    Ack,
}

/// The plugin's answer to a `Need`.
enum Answer {
    Items(Vec<u8>),
    End,
    Failed(String),
}

/// A host method running for a plugin (one per nested `call-start`).
pub(super) struct Running {
    events: Receiver<ToPlugin>,
    /// Per stream argument: where its answers go.
    answers: Vec<SyncSender<Answer>>,
    /// The stream whose items the plugin is to send next.
    awaiting: Option<u32>,
}

thread_local! {
    /// The plugin threads this thread runs a host method for (and theirs,
    /// for methods that called plugins which called the host in turn).
    static SERVING: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

/// Whether this thread runs a host method for the plugin thread `token`.
pub(super) fn serving(token: u64) -> bool {
    SERVING.with_borrow(|s| s.contains(&token))
}

/// A stream argument as the host method sees it: each batch is asked of
/// the plugin's thread.
struct FromPlugin {
    position: u32,
    method: &'static str,
    requests: Sender<ToPlugin>,
    answers: Receiver<Answer>,
    ended: bool,
}

impl BatchSource for FromPlugin {
    fn next_batch(&mut self, max_items: u32) -> Result<Option<Vec<u8>>, CallError> {
        if self.ended {
            return Ok(None);
        }
        let gone = || CallError::Protocol {
            method: self.method,
            detail: "the plugin stopped producing this stream: its call ended (it trapped, or \
                     the method's result came back first)"
                .into(),
        };
        self.requests
            .send(ToPlugin::Need {
                position: self.position,
                max: max_items.max(1),
            })
            .map_err(|_| gone())?;
        match self.answers.recv().map_err(|_| gone())? {
            Answer::Items(items) => Ok(Some(items)),
            Answer::End => {
                self.ended = true;
                Ok(None)
            }
            Answer::Failed(message) => {
                self.ended = true;
                Err(CallError::Protocol {
                    method: self.method,
                    detail: format!("the plugin's stream failed: {message}"),
                })
            }
        }
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any> {
        self
    }
}

impl Drop for FromPlugin {
    fn drop(&mut self) {
        if !self.ended {
            // The plugin drops its producer; gone already if the call ended.
            let _ = self.requests.send(ToPlugin::Dropped(self.position));
        }
    }
}

/// `host.call-start` and `host.call-feed`.
pub(super) fn link(
    scope: &mut LinkerInstance<'_, HostState>,
    token: fn() -> u64,
) -> wasmtime::Result<()> {
    scope.func_wrap(
        "call-start",
        move |mut store: StoreContextMut<'_, HostState>,
              (method, args, count): (u32, Vec<u8>, u32)| {
            let state = store.data_mut();
            let event = match state.host.clone() {
                Some(host) => {
                    start(state, host, method, args, count, token());
                    next_event(state)
                }
                None => CallEvent::Done(Err("this plugin was given no host interface".into())),
            };
            Ok((event,))
        },
    )?;
    scope.func_wrap(
        "call-feed",
        |mut store: StoreContextMut<'_, HostState>, (answer,): (Feed,)| {
            let state = store.data_mut();
            Ok((feed(state, answer),))
        },
    )
}

/// Starts host method `method` on a thread of its own, with `count`
/// stream arguments the plugin produces.
fn start(
    state: &mut HostState,
    host: HostCall,
    method: u32,
    args: Vec<u8>,
    count: u32,
    plugin: u64,
) {
    let (requests, events) = mpsc::channel();
    let mut answers = Vec::new();
    let mut inputs = Vec::new();
    for position in 0..count {
        let (to_stream, from_plugin) = mpsc::sync_channel(1);
        answers.push(to_stream);
        inputs.push(OwnedStream::from_backend(
            Box::new(FromPlugin {
                position,
                method: "host method",
                requests: requests.clone(),
                answers: from_plugin,
                ended: false,
            }),
            "host method",
        ));
    }
    let mut serving = SERVING.with_borrow(Clone::clone);
    serving.push(plugin);
    let spawned = std::thread::Builder::new()
        .name("fidius-host-call".into())
        .spawn(move || {
            SERVING.set(serving);
            let keep = requests.clone();
            let mut streams = move |stream: OwnedStream| {
                let (handle_tx, handle_rx) = mpsc::sync_channel(1);
                let _ = keep.send(ToPlugin::Keep(stream, handle_tx));
                // 0 (no stream) if the plugin's call has ended meanwhile.
                handle_rx.recv().unwrap_or(0)
            };
            let result = host(method as usize, &args, inputs, &mut streams);
            let _ = requests.send(ToPlugin::Done(result));
        });
    if let Err(e) = spawned {
        let (requests, events_failed) = mpsc::channel();
        let _ = requests.send(ToPlugin::Done(Err(format!(
            "cannot start a thread for the host method: {e}"
        ))));
        state.running.push(Running {
            events: events_failed,
            answers,
            awaiting: None,
        });
        return;
    }
    state.running.push(Running {
        events,
        answers,
        awaiting: None,
    });
}

/// Waits for the running method's next request the plugin must answer.
fn next_event(state: &mut HostState) -> CallEvent {
    loop {
        let Some(running) = state.running.last_mut() else {
            return not_running();
        };
        match running.events.recv() {
            Ok(ToPlugin::Need { position, max }) => {
                running.awaiting = Some(position);
                return CallEvent::Need(Need { position, max });
            }
            Ok(ToPlugin::Dropped(position)) => return CallEvent::Dropped(position),
            Ok(ToPlugin::Keep(stream, handle)) => {
                let _ = handle.send(state.streams.insert(stream));
            }
            Ok(ToPlugin::Done(result)) => {
                state.running.pop();
                return CallEvent::Done(result);
            }
            Err(_) => {
                state.running.pop();
                return CallEvent::Done(Err(
                    "the host method's thread ended without a result".into()
                ));
            }
        }
    }
}

/// The plugin's answer to the last request, then the next request.
fn feed(state: &mut HostState, answer: Feed) -> CallEvent {
    let Some(running) = state.running.last_mut() else {
        return not_running();
    };
    let answer = match answer {
        Feed::Items(items) => Some(Answer::Items(items)),
        Feed::End => Some(Answer::End),
        Feed::Failed(message) => Some(Answer::Failed(message)),
        Feed::Ack => None,
    };
    // Answers only the request made (a plugin answering none is ignored);
    // the stream may have been dropped meanwhile.
    if let Some(answer) = answer
        && let Some(position) = running.awaiting.take()
        && let Some(to) = running.answers.get(position as usize)
    {
        let _ = to.send(answer);
    }
    next_event(state)
}

fn not_running() -> CallEvent {
    CallEvent::Done(Err(
        "no host method is running (`call-feed` without `call-start`)".into(),
    ))
}
