//! One Janus session: its requests, its long poll and its keepalive.
//!
//! Janus answers a plugin `message` with an `ack` and delivers the plugin's answer, trickled
//! candidates and every notification as events on the session's long poll
//! (`GET /janus/<session>`). A [`Session`] runs that long poll in its own task and hands the
//! events, in order, to the one [`Events`] reader of the session; a second task sends a
//! `keepalive` every [`KEEPALIVE_INTERVAL`] (Janus expires sessions after 60 s without one,
//! and a long poll cancelled mid-answer would lose events, so the two never share a task).
//! Both tasks end with the session (dropped, destroyed, or expired on the Janus side), and
//! the reader then sees the end of the stream.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::http;
use crate::target::TargetError;

/// Interval of the explicit keepalive (Janus's session timeout is 60 s).
pub(super) const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(25);

/// How long Janus may hold a long poll (it answers a keepalive after 30 s).
const LONG_POLL_TIMEOUT: Duration = Duration::from_secs(45);

/// Consecutive long-poll failures after which the session is given up.
const LONG_POLL_ATTEMPTS: u32 = 5;

/// Events buffered while a request waits for its own answer.
const MAX_PENDING: usize = 4096;

/// A random transaction id.
pub(super) fn transaction() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// Where Janus listens and how long a request may take.
#[derive(Debug, Clone)]
pub(super) struct Endpoint {
    pub address: SocketAddr,
    pub base_path: String,
    pub timeout: Duration,
}

impl Endpoint {
    async fn post(
        &self,
        path: &str,
        body: &Value,
        what: &'static str,
    ) -> Result<Value, TargetError> {
        http::request(self.address, path, Some(body), self.timeout, what).await
    }
}

/// A live Janus session. Dropping it stops its tasks (the session then expires on Janus
/// unless [`Session::destroy`] ended it).
#[derive(Debug)]
pub(super) struct Session {
    endpoint: Endpoint,
    id: u64,
    poller: JoinHandle<()>,
    keepalive: JoinHandle<()>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.poller.abort();
        self.keepalive.abort();
    }
}

impl Session {
    /// Creates a session and starts its long poll and keepalive.
    pub async fn create(endpoint: Endpoint) -> Result<(Self, Events), TargetError> {
        let body = json!({"janus": "create", "transaction": transaction()});
        let answer = endpoint
            .post(&endpoint.base_path, &body, "Janus session create")
            .await?;
        let id = answer
            .get("data")
            .and_then(|d| d.get("id"))
            .and_then(Value::as_u64)
            .ok_or(TargetError::Protocol("Janus created no session id"))?;
        let (sender, receiver) = mpsc::unbounded_channel();
        let poller = tokio::spawn(long_poll(endpoint.clone(), id, sender));
        let keepalive = tokio::spawn(keepalive(endpoint.clone(), id));
        Ok((
            Self {
                endpoint,
                id,
                poller,
                keepalive,
            },
            Events {
                receiver,
                pending: VecDeque::new(),
            },
        ))
    }

    fn path(&self) -> String {
        format!("{}/{}", self.endpoint.base_path, self.id)
    }

    /// Attaches a VideoRoom handle.
    pub async fn attach(&self) -> Result<u64, TargetError> {
        let body = json!({"janus": "attach", "plugin": "janus.plugin.videoroom",
            "transaction": transaction()});
        let answer = self
            .endpoint
            .post(&self.path(), &body, "Janus attach")
            .await?;
        answer
            .get("data")
            .and_then(|d| d.get("id"))
            .and_then(Value::as_u64)
            .ok_or(TargetError::Protocol("Janus attached no handle id"))
    }

    /// Sends a plugin message on `handle`. Synchronous requests (`create`, `destroy`...)
    /// come back as `Answer::Done` with the plugin's data; asynchronous ones are acked and
    /// answered on the long poll under the returned transaction ([`Events::answer`]).
    pub async fn message(
        &self,
        handle: u64,
        body: Value,
        jsep: Option<Value>,
    ) -> Result<Answer, TargetError> {
        let transaction = transaction();
        let mut message = json!({"janus": "message", "transaction": transaction, "body": body});
        if let (Some(jsep), Some(object)) = (jsep, message.as_object_mut()) {
            object.insert("jsep".to_owned(), jsep);
        }
        let path = format!("{}/{handle}", self.path());
        let answer = self
            .endpoint
            .post(&path, &message, "Janus plugin message")
            .await?;
        match answer.get("janus").and_then(Value::as_str) {
            Some("ack") => Ok(Answer::Pending(transaction)),
            Some("success") => {
                let data = plugin_data(&answer).cloned().unwrap_or(Value::Null);
                if data.get("error").is_some() {
                    return Err(http::refused(&answer));
                }
                Ok(Answer::Done(data))
            }
            _ => Err(TargetError::Protocol(
                "unexpected answer to a Janus message",
            )),
        }
    }

    /// Ends the session on Janus (its handles detach: a publisher leaves its room) and
    /// stops its tasks, so that its reader sees the end at once (Janus would only fail the
    /// next long poll, up to 30 s later).
    pub async fn destroy(&self) -> Result<(), TargetError> {
        let body = json!({"janus": "destroy", "transaction": transaction()});
        let result = self
            .endpoint
            .post(&self.path(), &body, "Janus session destroy")
            .await
            .map(drop);
        self.poller.abort();
        self.keepalive.abort();
        result
    }
}

/// How Janus took a plugin message.
#[derive(Debug)]
pub(super) enum Answer {
    /// Answered at once with the plugin's data.
    Done(Value),
    /// Acked; the answer comes as an event with this transaction.
    Pending(String),
}

/// `plugindata.data` of a Janus message.
pub(super) fn plugin_data(message: &Value) -> Option<&Value> {
    message.get("plugindata").and_then(|p| p.get("data"))
}

/// The `sender` (handle id) of an event.
pub(super) fn sender(message: &Value) -> Option<u64> {
    message.get("sender").and_then(Value::as_u64)
}

/// The reader of one session's events.
#[derive(Debug)]
pub(super) struct Events {
    receiver: mpsc::UnboundedReceiver<Value>,
    /// Events that arrived while something else was awaited, oldest first.
    pending: VecDeque<Value>,
}

impl Events {
    /// The next event; `None` once the session ended.
    pub async fn next(&mut self) -> Option<Value> {
        match self.pending.pop_front() {
            Some(event) => Some(event),
            None => self.receiver.recv().await,
        }
    }

    /// The first event (buffered or new) that `matches`; the others stay buffered.
    pub async fn wait(
        &mut self,
        deadline: Instant,
        what: &'static str,
        mut matches: impl FnMut(&Value) -> bool,
    ) -> Result<Value, TargetError> {
        if let Some(index) = self.pending.iter().position(&mut matches) {
            if let Some(event) = self.pending.remove(index) {
                return Ok(event);
            }
        }
        loop {
            let event = tokio::time::timeout_at(deadline, self.receiver.recv())
                .await
                .map_err(|_| TargetError::Timeout(what))?
                .ok_or(TargetError::Protocol("the Janus session ended"))?;
            if matches(&event) {
                return Ok(event);
            }
            if self.pending.len() >= MAX_PENDING {
                self.pending.pop_front();
            }
            self.pending.push_back(event);
        }
    }

    /// The plugin's answer to the message sent under `transaction`: its event (with the
    /// JSEP, if any). A plugin error becomes [`TargetError::Refused`].
    pub async fn answer(
        &mut self,
        transaction: &str,
        deadline: Instant,
    ) -> Result<Value, TargetError> {
        let event = self
            .wait(deadline, "Janus plugin answer", |event| {
                event.get("transaction").and_then(Value::as_str) == Some(transaction)
                    && event.get("janus").and_then(Value::as_str) == Some("event")
            })
            .await?;
        if plugin_data(&event).is_some_and(|d| d.get("error").is_some()) {
            return Err(http::refused(&event));
        }
        Ok(event)
    }

    /// Removes and returns the buffered events of `handle` that `matches`.
    pub fn take_buffered(&mut self, mut matches: impl FnMut(&Value) -> bool) -> Vec<Value> {
        let mut taken = Vec::new();
        self.pending.retain(|event| {
            if matches(event) {
                taken.push(event.clone());
                false
            } else {
                true
            }
        });
        taken
    }
}

async fn long_poll(endpoint: Endpoint, id: u64, events: mpsc::UnboundedSender<Value>) {
    let mut failures = 0;
    let mut rid: u64 = 0;
    loop {
        rid += 1;
        let path = format!("{}/{id}?rid={rid}&maxev=10", endpoint.base_path);
        match http::request(
            endpoint.address,
            &path,
            None,
            LONG_POLL_TIMEOUT,
            "Janus long poll",
        )
        .await
        {
            Ok(Value::Array(list)) => {
                failures = 0;
                for event in list {
                    if !forward(&events, event) {
                        return;
                    }
                }
            }
            Ok(event) => {
                failures = 0;
                if !forward(&events, event) {
                    return;
                }
            }
            // The session is gone (destroyed or expired): the reader sees the end.
            Err(TargetError::Refused { .. }) => return,
            Err(_) => {
                failures += 1;
                if failures >= LONG_POLL_ATTEMPTS || events.is_closed() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// Hands an event to the reader (keepalives are dropped); false once nobody reads.
fn forward(events: &mpsc::UnboundedSender<Value>, event: Value) -> bool {
    if event.get("janus").and_then(Value::as_str) == Some("keepalive") {
        return !events.is_closed();
    }
    events.send(event).is_ok()
}

async fn keepalive(endpoint: Endpoint, id: u64) {
    let path = format!("{}/{id}", endpoint.base_path);
    let mut interval = tokio::time::interval(KEEPALIVE_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval.tick().await;
    loop {
        interval.tick().await;
        let body = json!({"janus": "keepalive", "transaction": transaction()});
        if let Err(TargetError::Refused { .. }) =
            endpoint.post(&path, &body, "Janus keepalive").await
        {
            return;
        }
    }
}
