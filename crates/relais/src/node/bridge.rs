//! The bridge channel (colibri-ws): the WebSocket a Jitsi Meet client opens to the bridge at
//! the URL of its Colibri2 transport (`web-sockets`), for JSON messages (constraints, video
//! types, endpoint messages) in both directions.
//!
//! `GET /colibri-ws/{server_id}/{conference}/{endpoint}?pwd=…`: the media task checks the
//! conference, the endpoint and the pwd (the endpoint's local ICE pwd) before the upgrade and
//! answers 403 for any mismatch, without saying which part was wrong. `server_id` is JVB's
//! own id in the URL; relais has one media task, so it is neither checked nor logged.
//!
//! After the upgrade this module owns the socket: it parses every text frame with
//! relais-colibri ([`parse`]), answers `ClientHello` itself, turns the rest into
//! [`BridgeInput`]s for the media task ([`to_input`], pure and unit-tested) and writes the
//! media task's JSON texts to the client. Refused frames are counted
//! ([`BridgeCounter`]) and answered by nothing, as JVB does; the channel stays open.

use std::time::Duration;

use axum::extract::rejection::PathRejection;
use axum::extract::ws::{close_code, CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use relais_colibri::bridge_channel::{
    self, parse, BridgeChannelError, BridgeChannelMessage, ReceiverAudioSubscription,
    ReceiverVideoConstraints, ServerHello, MAX_MESSAGE_BYTES,
};
use relais_conference::allocation::{ReceiverConstraintsUpdate, VideoConstraints, VideoType};
use relais_conference::{AudioSubscription, EndpointId};
use serde_json::{Map, Value};
use tokio::sync::mpsc;

use super::bridge_io::{BridgeCounter, BridgeInput};
use super::media::Command;
use super::signalling::NodeHandle;
use crate::logging::stream_tag;

/// Largest WebSocket message (and frame) the socket reads. A little above
/// [`MAX_MESSAGE_BYTES`] so that a message just over the protocol cap is read, refused by
/// [`parse`] and counted while the channel stays open; anything larger ends the channel
/// (tungstenite refuses it from the frame header, before allocating the payload).
const MAX_WEBSOCKET_MESSAGE: usize = MAX_MESSAGE_BYTES + 16 * 1024;

/// How long one write to the client may take. A client that stops reading would otherwise
/// block the session (and, through it, the reading of its own messages) forever; its
/// channel is closed instead.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a counter may wait for room in the media task's queue: counters are statistics,
/// and dropping one beats holding up the socket.
const COUNT_TIMEOUT: Duration = Duration::from_millis(100);

/// How long to wait for the client's close frame after sending ours.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// The bridge channel route, for the public listener.
pub(crate) fn router(handle: NodeHandle) -> Router {
    Router::new()
        .route(
            "/colibri-ws/{server_id}/{conference}/{endpoint}",
            get(upgrade),
        )
        .with_state(handle)
}

/// Checks the URL with the media task, then upgrades to the session.
///
/// The upgrade extractor comes first: a request that is no WebSocket handshake is refused
/// before the media task attaches anything (it would be left without a socket).
async fn upgrade(
    upgrade: WebSocketUpgrade,
    State(handle): State<NodeHandle>,
    path: Result<Path<(String, String, String)>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Response {
    // A path that does not decode, a malformed query and a missing pwd all get the same
    // answer as wrong credentials: nothing tells a prober which part was wrong.
    let Ok(Path((_server_id, conference, endpoint))) = path else {
        return StatusCode::FORBIDDEN.into_response();
    };
    let Some(pwd) = query.as_deref().and_then(query_pwd) else {
        return StatusCode::FORBIDDEN.into_response();
    };
    let attached = handle
        .request(|reply| Command::BridgeAttach {
            meeting_id: conference.clone(),
            endpoint: endpoint.clone(),
            pwd,
            reply,
        })
        .await;
    let session = match attached {
        Some(Ok(session)) => session,
        Some(Err(_)) | None => {
            tracing::debug!(
                conference = %stream_tag(&conference),
                "bridge channel refused"
            );
            return StatusCode::FORBIDDEN.into_response();
        }
    };
    // From here the guard detaches however things end, including an upgrade that never
    // completes (axum then drops the callback, and the guard with it).
    let attachment = Attachment {
        id: session.id,
        outgoing: session.outgoing,
        handle,
    };
    upgrade
        .max_message_size(MAX_WEBSOCKET_MESSAGE)
        .max_frame_size(MAX_WEBSOCKET_MESSAGE)
        .on_upgrade(move |socket| run_session(socket, attachment, endpoint))
}

/// A bridge channel the media task attached: its endpoint, the texts for the client and the
/// way to the media task. Dropping it detaches the channel.
struct Attachment {
    /// The endpoint.
    id: EndpointId,
    /// JSON texts for the client.
    outgoing: mpsc::Receiver<String>,
    /// The media task.
    handle: NodeHandle,
}

impl Drop for Attachment {
    fn drop(&mut self) {
        // Closed first: the media task keeps a newer channel of the same endpoint (a client
        // that reconnected) and clears only one whose receiver is closed.
        self.outgoing.close();
        let handle = self.handle.clone();
        let id = self.id;
        // Drop cannot wait; outside a runtime (only at process exit) there is no media task
        // left to tell.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                handle.command(Command::BridgeDetach { id }).await;
            });
        }
    }
}

/// The `pwd` parameter of a query, percent-decoded; `None` when absent, repeated or not
/// decodable.
///
/// Not form decoding: an ICE pwd may contain `+` (RFC 8839 ice-char), and URLs carry it
/// unescaped (JVB writes the pwd into the URL as is), so `+` is itself, not a space.
fn query_pwd(query: &str) -> Option<String> {
    let mut values = query
        .split('&')
        .filter_map(|pair| pair.strip_prefix("pwd="));
    let value = values.next()?;
    // Two pwds would make the one checked depend on the reader: refused.
    if values.next().is_some() {
        return None;
    }
    percent_decode(value)
}

/// Decodes `%XX` escapes (and nothing else); `None` for a broken escape or bytes that are not
/// UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes().iter();
    while let Some(&byte) = rest.next() {
        if byte == b'%' {
            let high = char::from(*rest.next()?).to_digit(16)?;
            let low = char::from(*rest.next()?).to_digit(16)?;
            bytes.push(u8::try_from(high * 16 + low).ok()?);
        } else {
            bytes.push(byte);
        }
    }
    String::from_utf8(bytes).ok()
}

/// Why a session loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The client sent a close frame: the reply (queued by tungstenite) is still to be sent.
    ClosedByClient,
    /// The socket failed or ended, or the media task is gone: nothing more to say.
    Failed,
    /// The media task dropped the session (the endpoint expired): close the socket cleanly.
    Expired,
}

/// The session: client frames in, media-task texts out, until either side ends.
async fn run_session(mut socket: WebSocket, mut attachment: Attachment, endpoint: String) {
    let id = attachment.id;
    tracing::debug!(endpoint = id.0, "bridge channel open");
    let end = loop {
        // Both branches are cancel-safe (`WebSocket::recv` and `mpsc::Receiver::recv`), and
        // select! drops both futures before a handler runs, so handlers may use the socket.
        tokio::select! {
            frame = socket.recv() => match frame {
                Some(Ok(message)) => {
                    let handle = &attachment.handle;
                    if let Some(end) = on_frame(&mut socket, handle, id, &endpoint, message).await {
                        break end;
                    }
                }
                Some(Err(_)) | None => break End::Failed,
            },
            text = attachment.outgoing.recv() => match text {
                Some(text) => {
                    if send(&mut socket, Message::Text(text.into())).await.is_err() {
                        break End::Failed;
                    }
                }
                None => break End::Expired,
            },
        }
    };
    // Detached before the closing handshake, which needs nothing from the media task. Also
    // after an expiry: the media task ignores a detach of an endpoint it no longer has, and
    // every attach being followed by a detach keeps the rule simple.
    drop(attachment);
    match end {
        End::Expired => close(&mut socket).await,
        End::ClosedByClient => finish_close(&mut socket).await,
        End::Failed => {}
    }
    tracing::debug!(
        endpoint = id.0,
        expired = end == End::Expired,
        "bridge channel closed"
    );
}

/// Handles one client frame; `Some(end)` ends the session.
async fn on_frame(
    socket: &mut WebSocket,
    handle: &NodeHandle,
    id: EndpointId,
    endpoint: &str,
    message: Message,
) -> Option<End> {
    let text = match message {
        Message::Text(text) => text,
        Message::Binary(_) => {
            count(handle, BridgeCounter::Malformed).await;
            return None;
        }
        // tungstenite answers pings itself; pongs need nothing.
        Message::Ping(_) | Message::Pong(_) => return None,
        Message::Close(_) => return Some(End::ClosedByClient),
    };
    let reaction = parse(text.as_str())
        .map_err(|error| {
            let counter = counter_for(&error);
            // The error names a field or says what is wrong, never values or the sender.
            if counter != BridgeCounter::UnknownClass {
                tracing::debug!(endpoint = id.0, %error, "bridge channel message refused");
            }
            counter
        })
        .and_then(|message| to_input(message, endpoint));
    match reaction {
        Err(counter) => {
            count(handle, counter).await;
            None
        }
        Ok(Reaction::Reply(text)) => {
            count(handle, BridgeCounter::Received).await;
            match send(socket, Message::Text(text.into())).await {
                Ok(()) => None,
                Err(()) => Some(End::Failed),
            }
        }
        Ok(Reaction::Input(input)) => {
            count(handle, BridgeCounter::Received).await;
            // Not bounded like the counters: the input must not be lost, and a full queue
            // is the media task's back-pressure (the shared queue also carries signalling).
            if handle.command(Command::BridgeInput { id, input }).await {
                None
            } else {
                Some(End::Failed)
            }
        }
    }
}

/// Sends a frame, bounded by [`SEND_TIMEOUT`]; `Err` means the channel is unusable.
async fn send(socket: &mut WebSocket, message: Message) -> Result<(), ()> {
    match tokio::time::timeout(SEND_TIMEOUT, socket.send(message)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) | Err(_) => Err(()),
    }
}

/// Sends a normal close frame and waits (bounded) for the client's answer, as the closing
/// handshake asks; a client that does not answer is dropped when the wait ends.
async fn close(socket: &mut WebSocket) {
    let frame = CloseFrame {
        code: close_code::NORMAL,
        reason: Utf8Bytes::from_static("endpoint expired"),
    };
    if send(socket, Message::Close(Some(frame))).await.is_ok() {
        finish_close(socket).await;
    }
}

/// Completes a closing handshake, bounded by [`CLOSE_TIMEOUT`]: reading on flushes the close
/// reply tungstenite queued for a client's close frame, and after our own close frame it
/// waits for the client's. Frames the client sent before it saw a close are dropped unread.
async fn finish_close(socket: &mut WebSocket) {
    let drain = async {
        while let Some(Ok(message)) = socket.recv().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, drain).await;
}

/// Queues a counter for the media task, giving up after [`COUNT_TIMEOUT`].
async fn count(handle: &NodeHandle, counter: BridgeCounter) {
    let _ =
        tokio::time::timeout(COUNT_TIMEOUT, handle.command(Command::BridgeCount(counter))).await;
}

/// What a client message makes the session do.
#[derive(Debug)]
enum Reaction {
    /// Send this JSON text back on the socket (the `ServerHello` answering `ClientHello`).
    Reply(String),
    /// Hand this to the media task.
    Input(BridgeInput),
}

/// The counter for a message [`parse`] refused: an unknown class is ignored (newer clients
/// send classes relais does not know), text that is not a message with a class is
/// malformed, and a known class with bad fields (or a message too large, or a duplicate key)
/// is invalid.
fn counter_for(error: &BridgeChannelError) -> BridgeCounter {
    match error {
        BridgeChannelError::UnknownClass(_) => BridgeCounter::UnknownClass,
        BridgeChannelError::Malformed(_)
        | BridgeChannelError::NotAnObject
        | BridgeChannelError::MissingClass => BridgeCounter::Malformed,
        BridgeChannelError::TooLarge { .. }
        | BridgeChannelError::DuplicateKey(_)
        | BridgeChannelError::MissingField { .. }
        | BridgeChannelError::InvalidField { .. } => BridgeCounter::Invalid,
    }
}

/// What a parsed client message means for the session of `endpoint` (its Colibri2 id, from
/// the URL), or the counter of a message a client may not send.
fn to_input(message: BridgeChannelMessage, endpoint: &str) -> Result<Reaction, BridgeCounter> {
    let input = match message {
        BridgeChannelMessage::ClientHello => {
            // JVB leaves the version out by default; so does relais (nothing to fingerprint).
            let hello = BridgeChannelMessage::ServerHello(ServerHello::default());
            return Ok(Reaction::Reply(hello.to_json()));
        }
        BridgeChannelMessage::ReceiverVideoConstraints(constraints) => {
            BridgeInput::ReceiverVideoConstraints(constraints_update(constraints))
        }
        BridgeChannelMessage::LastNChangedEvent(event) => {
            BridgeInput::ReceiverVideoConstraints(ReceiverConstraintsUpdate {
                last_n: Some(event.last_n),
                ..ReceiverConstraintsUpdate::default()
            })
        }
        // `endpoint_id` is only set between bridges; a client's own is implied by the URL.
        BridgeChannelMessage::SourceVideoTypeMessage(message) => BridgeInput::SourceVideoType {
            source: message.source_name,
            video_type: video_type(message.video_type),
        },
        // Legacy clients have one camera source, named as Jicofo names it.
        BridgeChannelMessage::VideoTypeMessage(message) => BridgeInput::SourceVideoType {
            source: format!("{endpoint}-v0"),
            video_type: video_type(message.video_type),
        },
        BridgeChannelMessage::ReceiverAudioSubscription(subscription) => {
            BridgeInput::AudioSubscription(audio_subscription(subscription))
        }
        BridgeChannelMessage::EndpointMessage(message) => {
            // The client's `from` is dropped: the media task sets the sender it knows.
            let to = (!message.is_broadcast()).then(|| message.to.clone());
            let mut object = Map::new();
            object.insert(
                bridge_channel::CLASS_FIELD.to_owned(),
                Value::String("EndpointMessage".to_owned()),
            );
            object.insert("to".to_owned(), Value::String(message.to));
            object.extend(message.other_fields);
            BridgeInput::EndpointMessage {
                to,
                message: object,
            }
        }
        BridgeChannelMessage::EndpointStats(stats) => {
            let mut object = Map::new();
            object.insert(
                bridge_channel::CLASS_FIELD.to_owned(),
                Value::String("EndpointStats".to_owned()),
            );
            object.extend(stats.other_fields);
            BridgeInput::EndpointMessage {
                to: None,
                message: object,
            }
        }
        BridgeChannelMessage::ServerHello(_)
        | BridgeChannelMessage::ForwardedSources(_)
        | BridgeChannelMessage::DominantSpeakerEndpointChangeEvent(_)
        | BridgeChannelMessage::SenderSourceConstraints(_)
        | BridgeChannelMessage::ConnectionStats(_)
        | BridgeChannelMessage::EndpointConnectivityStatusChangeEvent(_)
        | BridgeChannelMessage::VideoSourcesMap(_)
        | BridgeChannelMessage::AudioSourcesMap(_) => return Err(BridgeCounter::NotFromClients),
    };
    Ok(Reaction::Input(input))
}

/// A `ReceiverVideoConstraints` message as the conference core's partial update.
fn constraints_update(message: ReceiverVideoConstraints) -> ReceiverConstraintsUpdate {
    ReceiverConstraintsUpdate {
        last_n: message.last_n,
        selected_sources: message.selected_sources,
        on_stage_sources: message.on_stage_sources,
        default_constraints: message.default_constraints.map(video_constraints),
        constraints: message.constraints.map(|per_source| {
            per_source
                .into_iter()
                .map(|(source, constraints)| (source, video_constraints(constraints)))
                .collect()
        }),
        assumed_bandwidth_bps: message.assumed_bandwidth_bps,
    }
}

/// One source's constraints; an absent `maxFrameRate` is JVB's default, −1 (no limit).
fn video_constraints(wire: bridge_channel::VideoConstraints) -> VideoConstraints {
    VideoConstraints {
        max_height: wire.max_height,
        max_frame_rate: wire.max_frame_rate.unwrap_or(-1.0),
    }
}

/// The allocation's video type. `NONE` (older clients) and `DISABLED` both mean the sender
/// sends no video, which the allocation has one variant for.
fn video_type(wire: bridge_channel::VideoType) -> VideoType {
    match wire {
        bridge_channel::VideoType::Camera => VideoType::Camera,
        bridge_channel::VideoType::Desktop => VideoType::Desktop,
        bridge_channel::VideoType::DesktopHighFps => VideoType::DesktopHighFps,
        bridge_channel::VideoType::Disabled | bridge_channel::VideoType::None => {
            VideoType::Disabled
        }
    }
}

/// The conference core's audio subscription. The `mode` forms map one to one. The lists form
/// (`all`, `include`, `exclude`) maps to what [`ReceiverAudioSubscription::wants`] means:
/// with `all`, every source not excluded (`include` adds nothing: in JVB it names synthetic
/// sources that `all` does not cover, and relais has none); without, the included sources
/// that are not excluded (none at all when that leaves nothing).
fn audio_subscription(wire: ReceiverAudioSubscription) -> AudioSubscription {
    match wire {
        ReceiverAudioSubscription::All => AudioSubscription::All,
        ReceiverAudioSubscription::None => AudioSubscription::None,
        ReceiverAudioSubscription::Include(list) => AudioSubscription::Include(list),
        ReceiverAudioSubscription::Exclude(list) => AudioSubscription::Exclude(list),
        ReceiverAudioSubscription::Custom {
            all: true, exclude, ..
        } if exclude.is_empty() => AudioSubscription::All,
        ReceiverAudioSubscription::Custom {
            all: true, exclude, ..
        } => AudioSubscription::Exclude(exclude),
        ReceiverAudioSubscription::Custom {
            all: false,
            include,
            exclude,
        } => {
            let wanted: Vec<String> = include
                .into_iter()
                .filter(|source| !exclude.contains(source))
                .collect();
            if wanted.is_empty() {
                AudioSubscription::None
            } else {
                AudioSubscription::Include(wanted)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use super::*;

    const ENDPOINT: &str = "79f0273d";

    fn fixtures(kind: &str) -> Vec<(String, String)> {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../relais-colibri/tests/fixtures/bridge-channel")
            .join(kind);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|e| e == "json"))
            .map(|path| {
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read_to_string(&path).unwrap())
            })
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no fixtures in {}", dir.display());
        files
    }

    /// What the session does with one text frame: the reaction, or the counter.
    fn react(text: &str) -> Result<Reaction, BridgeCounter> {
        parse(text)
            .map_err(|e| counter_for(&e))
            .and_then(|m| to_input(m, ENDPOINT))
    }

    fn input(text: &str) -> BridgeInput {
        match react(text) {
            Ok(Reaction::Input(input)) => input,
            other => panic!("not an input: {other:?} for {text}"),
        }
    }

    fn object(text: &str) -> Map<String, Value> {
        match serde_json::from_str(text).unwrap() {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    fn constraints(max_height: i32, max_frame_rate: f64) -> VideoConstraints {
        VideoConstraints {
            max_height,
            max_frame_rate,
        }
    }

    #[test]
    fn accepted_fixtures_map_to_inputs_or_not_from_clients() {
        let mut seen = 0;
        for (name, text) in fixtures("accepted") {
            seen += 1;
            let reaction = react(&text);
            match name.as_str() {
                "01-EndpointMessage.json" => match input(&text) {
                    BridgeInput::EndpointMessage { to, message } => {
                        assert_eq!(to, None);
                        assert_eq!(message, object(&text));
                    }
                    other => panic!("{name}: {other:?}"),
                },
                "02-VideoTypeMessage.json" => match input(&text) {
                    BridgeInput::SourceVideoType { source, video_type } => {
                        assert_eq!(source, format!("{ENDPOINT}-v0"));
                        assert_eq!(video_type, VideoType::DesktopHighFps);
                    }
                    other => panic!("{name}: {other:?}"),
                },
                "03-SourceVideoTypeMessage.json" => match input(&text) {
                    BridgeInput::SourceVideoType { source, video_type } => {
                        assert_eq!(source, "source1234");
                        assert_eq!(video_type, VideoType::DesktopHighFps);
                    }
                    other => panic!("{name}: {other:?}"),
                },
                "04-VideoSourcesMap.json" | "05-AudioSourcesMap.json" => {
                    assert_eq!(
                        reaction.err(),
                        Some(BridgeCounter::NotFromClients),
                        "{name}"
                    );
                }
                "06-ReceiverAudioSubscription.json"
                | "07-ReceiverAudioSubscription.json"
                | "08-ReceiverAudioSubscription.json"
                | "09-ReceiverAudioSubscription.json"
                | "10-ReceiverAudioSubscription.json"
                | "11-ReceiverAudioSubscription.json"
                | "12-ReceiverAudioSubscription.json" => {
                    let expected = match name.as_str() {
                        // all + exclude: everything but the excluded one.
                        "06-ReceiverAudioSubscription.json" => {
                            AudioSubscription::Exclude(vec!["endpoint3".to_owned()])
                        }
                        // The lists form with nothing: all false, nothing included.
                        "07-ReceiverAudioSubscription.json" => AudioSubscription::None,
                        "08-ReceiverAudioSubscription.json" => AudioSubscription::All,
                        "09-ReceiverAudioSubscription.json" => AudioSubscription::None,
                        "10-ReceiverAudioSubscription.json" => AudioSubscription::Include(vec![
                            "source1".to_owned(),
                            "source2".to_owned(),
                        ]),
                        "11-ReceiverAudioSubscription.json" => {
                            AudioSubscription::Exclude(vec!["source3".to_owned()])
                        }
                        _ => AudioSubscription::Include(Vec::new()),
                    };
                    match input(&text) {
                        BridgeInput::AudioSubscription(subscription) => {
                            assert_eq!(subscription, expected, "{name}");
                        }
                        other => panic!("{name}: {other:?}"),
                    }
                }
                "13-EndpointMessage.json" => match input(&text) {
                    BridgeInput::EndpointMessage { to, message } => {
                        assert_eq!(to.as_deref(), Some("to_value"));
                        // Every field kept, the null one included.
                        assert_eq!(message, object(&text));
                    }
                    other => panic!("{name}: {other:?}"),
                },
                "14-VideoConstraints-object.json" => {
                    // Not a message (no class): malformed on the channel; as the constraints
                    // object it is, it maps with its frame rate.
                    assert_eq!(reaction.err(), Some(BridgeCounter::Malformed));
                    let wire = bridge_channel::VideoConstraints::parse(&text).unwrap();
                    assert_eq!(video_constraints(wire), constraints(1080, 15.0));
                }
                "15-ReceiverVideoConstraints.json" => match input(&text) {
                    BridgeInput::ReceiverVideoConstraints(update) => {
                        assert_eq!(update, ReceiverConstraintsUpdate::default());
                    }
                    other => panic!("{name}: {other:?}"),
                },
                "16-ReceiverVideoConstraints.json" => match input(&text) {
                    BridgeInput::ReceiverVideoConstraints(update) => {
                        let expected = ReceiverConstraintsUpdate {
                            last_n: Some(3),
                            default_constraints: Some(constraints(0, -1.0)),
                            constraints: Some(BTreeMap::from([
                                ("epOnStage".to_owned(), constraints(720, -1.0)),
                                ("epThumbnail1".to_owned(), constraints(180, -1.0)),
                                ("epThumbnail2".to_owned(), constraints(180, 30.0)),
                            ])),
                            ..ReceiverConstraintsUpdate::default()
                        };
                        assert_eq!(update, expected);
                    }
                    other => panic!("{name}: {other:?}"),
                },
                _ => panic!("new fixture {name}: add its expected mapping"),
            }
        }
        assert_eq!(seen, 16);
    }

    #[test]
    fn rejected_fixtures_give_their_counter() {
        for (name, text) in fixtures("rejected") {
            let expected = match name.as_str() {
                "00-empty-object.json" => BridgeCounter::Malformed,
                "01-invalid-colibri-class.json" => BridgeCounter::UnknownClass,
                // Duplicate keys, a missing field, a wrong type.
                "02-EndpointStats.json"
                | "03-EndpointStats.json"
                | "04-EndpointStats.json"
                | "05-EndpointStats.json"
                | "06-DominantSpeakerEndpointChangeEvent.json"
                | "07-DominantSpeakerEndpointChangeEvent.json" => BridgeCounter::Invalid,
                _ => panic!("new fixture {name}: add its expected counter"),
            };
            assert_eq!(react(&text).err(), Some(expected), "{name}");
        }
    }

    #[test]
    fn pwd_from_the_query() {
        assert_eq!(query_pwd("pwd=a+b/c").as_deref(), Some("a+b/c"));
        assert_eq!(query_pwd("x=1&pwd=a%2Bb%2Fc").as_deref(), Some("a+b/c"));
        assert_eq!(query_pwd("pwd=").as_deref(), Some(""));
        assert_eq!(query_pwd("x=1"), None);
        assert_eq!(query_pwd("pwd=a&pwd=b"), None);
        assert_eq!(query_pwd("pwd=a%2"), None);
        assert_eq!(query_pwd("pwd=a%zz"), None);
        assert_eq!(query_pwd("pwd=%ff"), None);
    }

    #[test]
    fn client_hello_is_answered_with_server_hello() {
        match react(r#"{"colibriClass":"ClientHello"}"#) {
            Ok(Reaction::Reply(text)) => {
                assert_eq!(text, r#"{"colibriClass":"ServerHello"}"#);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn full_receiver_video_constraints() {
        let text = r#"{"colibriClass":"ReceiverVideoConstraints","lastN":-1,
            "selectedSources":["a-v0"],"onStageSources":["b-v0"],
            "defaultConstraints":{"maxHeight":180,"maxFrameRate":15},
            "constraints":{},"assumedBandwidthBps":-1}"#;
        match input(text) {
            BridgeInput::ReceiverVideoConstraints(update) => {
                assert_eq!(
                    update,
                    ReceiverConstraintsUpdate {
                        last_n: Some(-1),
                        selected_sources: Some(vec!["a-v0".to_owned()]),
                        on_stage_sources: Some(vec!["b-v0".to_owned()]),
                        default_constraints: Some(constraints(180, 15.0)),
                        constraints: Some(BTreeMap::new()),
                        assumed_bandwidth_bps: Some(-1),
                    }
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn last_n_changed_is_an_update_with_only_last_n() {
        match input(r#"{"colibriClass":"LastNChangedEvent","lastN":2}"#) {
            BridgeInput::ReceiverVideoConstraints(update) => {
                assert_eq!(
                    update,
                    ReceiverConstraintsUpdate {
                        last_n: Some(2),
                        ..ReceiverConstraintsUpdate::default()
                    }
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn none_and_disabled_video_types_are_disabled() {
        for wire in ["NONE", "disabled"] {
            let text = format!(
                r#"{{"colibriClass":"SourceVideoTypeMessage","sourceName":"s","videoType":"{wire}"}}"#
            );
            match input(&text) {
                BridgeInput::SourceVideoType { video_type, .. } => {
                    assert_eq!(video_type, VideoType::Disabled);
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn audio_subscription_lists_form_without_all() {
        let text = r#"{"colibriClass":"ReceiverAudioSubscription",
            "include":["a","b"],"exclude":["b"]}"#;
        match input(text) {
            BridgeInput::AudioSubscription(subscription) => {
                assert_eq!(
                    subscription,
                    AudioSubscription::Include(vec!["a".to_owned()])
                );
            }
            other => panic!("{other:?}"),
        }
        let text = r#"{"colibriClass":"ReceiverAudioSubscription","all":true}"#;
        match input(text) {
            BridgeInput::AudioSubscription(subscription) => {
                assert_eq!(subscription, AudioSubscription::All);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn endpoint_message_drops_the_clients_from() {
        let text = r#"{"colibriClass":"EndpointMessage","to":"x","from":"spoofed","p":1}"#;
        match input(text) {
            BridgeInput::EndpointMessage { to, message } => {
                assert_eq!(to.as_deref(), Some("x"));
                assert!(!message.contains_key("from"));
                assert_eq!(message.get("p"), Some(&Value::from(1)));
                assert_eq!(
                    message.get("colibriClass"),
                    Some(&Value::from("EndpointMessage"))
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn endpoint_stats_go_to_everybody() {
        let text = r#"{"colibriClass":"EndpointStats","from":"spoofed","bitrate":{"up":1}}"#;
        match input(text) {
            BridgeInput::EndpointMessage { to, message } => {
                assert_eq!(to, None);
                assert!(!message.contains_key("from"));
                assert_eq!(
                    message.get("colibriClass"),
                    Some(&Value::from("EndpointStats"))
                );
                assert!(message.contains_key("bitrate"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bridge_only_classes_are_not_from_clients() {
        for text in [
            r#"{"colibriClass":"ServerHello"}"#,
            r#"{"colibriClass":"ForwardedSources","forwardedSources":[]}"#,
            r#"{"colibriClass":"DominantSpeakerEndpointChangeEvent","dominantSpeakerEndpoint":"a"}"#,
            r#"{"colibriClass":"SenderSourceConstraints","sourceName":"a","maxHeight":180}"#,
            r#"{"colibriClass":"ConnectionStats","estimatedDownlinkBandwidth":1}"#,
            r#"{"colibriClass":"EndpointConnectivityStatusChangeEvent","endpoint":"a","active":"true"}"#,
            r#"{"colibriClass":"VideoSourcesMap","mappedSources":[]}"#,
            r#"{"colibriClass":"AudioSourcesMap","mappedSources":[]}"#,
        ] {
            assert_eq!(
                react(text).err(),
                Some(BridgeCounter::NotFromClients),
                "{text}"
            );
        }
    }

    #[test]
    fn parse_errors_give_their_counter() {
        assert_eq!(react("{not json").err(), Some(BridgeCounter::Malformed));
        assert_eq!(react("[1]").err(), Some(BridgeCounter::Malformed));
        assert_eq!(react(r#"{"a":1}"#).err(), Some(BridgeCounter::Malformed));
        assert_eq!(
            react(r#"{"colibriClass":"NewThing"}"#).err(),
            Some(BridgeCounter::UnknownClass)
        );
        assert_eq!(
            react(r#"{"colibriClass":"LastNChangedEvent","lastN":"3"}"#).err(),
            Some(BridgeCounter::Invalid)
        );
        let huge = format!(
            r#"{{"colibriClass":"EndpointMessage","to":"","p":"{}"}}"#,
            "x".repeat(MAX_MESSAGE_BYTES)
        );
        assert_eq!(react(&huge).err(), Some(BridgeCounter::Invalid));
    }
}
