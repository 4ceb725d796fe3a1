//! The bridge channel (colibri-ws) of one participant: the WebSocket a Jitsi Meet client
//! opens at its Colibri2 `web-sockets` URL, with JSON messages discriminated by
//! `colibriClass`.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Map, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::target::{TargetError, TargetEvent, View, ViewChannel};

/// One participant's bridge channel.
#[derive(Debug)]
pub struct BridgeChannel {
    socket: WebSocketStream<TcpStream>,
}

/// `host:port` and whether the URL is a plain `ws://` one.
fn authority(url: &str) -> Result<&str, TargetError> {
    let rest = url.strip_prefix("ws://").ok_or(TargetError::Unsupported(
        "bridge channel URLs other than ws://",
    ))?;
    Ok(rest.split('/').next().unwrap_or(rest))
}

impl BridgeChannel {
    /// Connects to `url` (at `address` instead of the URL's host when given), completes
    /// the WebSocket handshake and says hello.
    pub async fn connect(
        url: &str,
        address: Option<SocketAddr>,
        timeout: Duration,
    ) -> Result<Self, TargetError> {
        let connect = async {
            let stream = match address {
                Some(address) => TcpStream::connect(address).await?,
                None => TcpStream::connect(authority(url)?).await?,
            };
            stream.set_nodelay(true)?;
            let (socket, _response) = tokio_tungstenite::client_async(url, stream).await?;
            Ok::<_, TargetError>(socket)
        };
        let socket = tokio::time::timeout(timeout, connect)
            .await
            .map_err(|_| TargetError::Timeout("bridge channel connection"))??;
        let mut channel = Self { socket };
        channel
            .send(&json!({"colibriClass": "ClientHello"}))
            .await?;
        Ok(channel)
    }

    /// Sends any bridge-channel message.
    pub async fn send(&mut self, message: &Value) -> Result<(), TargetError> {
        self.socket
            .send(Message::text(message.to_string()))
            .await
            .map_err(TargetError::from)
    }

    /// Sends an EndpointMessage to `to` (`""`: everybody) with `payload` merged in.
    pub async fn send_endpoint_message(
        &mut self,
        to: &str,
        payload: Map<String, Value>,
    ) -> Result<(), TargetError> {
        let mut message = payload;
        message.insert("colibriClass".into(), "EndpointMessage".into());
        message.insert("to".into(), to.into());
        self.send(&Value::Object(message)).await
    }
}

/// The ReceiverVideoConstraints message of `view`.
pub(crate) fn receiver_video_constraints(view: &View) -> Value {
    let constraints: Map<String, Value> = view
        .on_stage_sources
        .iter()
        .map(|source| {
            (
                source.clone(),
                json!({"maxHeight": view.on_stage_max_height}),
            )
        })
        .collect();
    json!({
        "colibriClass": "ReceiverVideoConstraints",
        "lastN": view.last_n,
        "onStageSources": view.on_stage_sources,
        "selectedSources": view.selected_sources,
        "defaultConstraints": {"maxHeight": view.default_max_height},
        "constraints": constraints,
    })
}

/// A bridge-channel message as an event; `None` for text that is no JSON object.
pub(crate) fn parse_event(text: &str) -> Option<TargetEvent> {
    let message: Value = serde_json::from_str(text).ok()?;
    let class = message.get("colibriClass")?.as_str()?.to_owned();
    let string = |key: &str| {
        message
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let strings = |key: &str| -> Vec<String> {
        message
            .get(key)
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let event = match class.as_str() {
        "ServerHello" => TargetEvent::ServerHello,
        "ForwardedSources" => TargetEvent::ForwardedSources(strings("forwardedSources")),
        "DominantSpeakerEndpointChangeEvent" => TargetEvent::DominantSpeaker {
            endpoint: string("dominantSpeakerEndpoint"),
            previous: strings("previousSpeakers"),
            silence: message
                .get("silence")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        },
        "SenderSourceConstraints" => TargetEvent::SenderSourceConstraints {
            source: string("sourceName"),
            max_height: message
                .get("maxHeight")
                .and_then(Value::as_i64)
                .and_then(|h| i32::try_from(h).ok())
                .unwrap_or(-1),
        },
        "ConnectionStats" => TargetEvent::ConnectionStats {
            estimated_downlink_bps: message
                .get("estimatedDownlinkBandwidth")
                .and_then(Value::as_f64)
                .map_or(0, |bps| bps.max(0.0) as u64),
        },
        "EndpointConnectivityStatusChangeEvent" => TargetEvent::EndpointConnectivity {
            endpoint: string("endpoint"),
            // JVB writes the flag as the string "true"/"false".
            active: match message.get("active") {
                Some(Value::Bool(active)) => *active,
                Some(Value::String(active)) => active == "true",
                _ => false,
            },
        },
        "EndpointMessage" => TargetEvent::EndpointMessage {
            from: message
                .get("from")
                .and_then(Value::as_str)
                .map(str::to_owned),
            message,
        },
        _ => TargetEvent::Other { class, message },
    };
    Some(event)
}

impl ViewChannel for BridgeChannel {
    async fn set_view(&mut self, view: &View) -> Result<(), TargetError> {
        self.send(&receiver_video_constraints(view)).await
    }

    async fn next_event(&mut self) -> Result<Option<TargetEvent>, TargetError> {
        loop {
            let Some(message) = self.socket.next().await else {
                return Ok(None);
            };
            match message? {
                Message::Text(text) => {
                    if let Some(event) = parse_event(text.as_str()) {
                        return Ok(Some(event));
                    }
                }
                Message::Close(_) => return Ok(None),
                // Pings are answered by tungstenite itself.
                _ => {}
            }
        }
    }

    async fn close(&mut self) -> Result<(), TargetError> {
        match self.socket.close(None).await {
            Ok(())
            | Err(tokio_tungstenite::tungstenite::Error::ConnectionClosed)
            | Err(tokio_tungstenite::tungstenite::Error::AlreadyClosed) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    #[test]
    fn constraints_carry_the_view() {
        let view = View {
            last_n: 25,
            on_stage_sources: vec!["aaaa0001-v0".into()],
            on_stage_max_height: 720,
            selected_sources: vec![],
            default_max_height: 180,
        };
        let message = receiver_video_constraints(&view);
        assert_eq!(message["colibriClass"], "ReceiverVideoConstraints");
        assert_eq!(message["lastN"], 25);
        assert_eq!(message["defaultConstraints"]["maxHeight"], 180);
        assert_eq!(message["constraints"]["aaaa0001-v0"]["maxHeight"], 720);
        assert_eq!(message["onStageSources"][0], "aaaa0001-v0");
    }

    #[test]
    fn events_parse() {
        assert_eq!(
            parse_event(r#"{"colibriClass":"ForwardedSources","forwardedSources":["a-v0"]}"#),
            Some(TargetEvent::ForwardedSources(vec!["a-v0".into()]))
        );
        assert_eq!(
            parse_event(
                r#"{"colibriClass":"EndpointConnectivityStatusChangeEvent","endpoint":"b","active":"false"}"#
            ),
            Some(TargetEvent::EndpointConnectivity {
                endpoint: "b".into(),
                active: false
            })
        );
        assert!(matches!(
            parse_event(r#"{"colibriClass":"Whatever"}"#),
            Some(TargetEvent::Other { .. })
        ));
        assert_eq!(parse_event("not json"), None);
        assert_eq!(
            authority("ws://127.0.0.1:9/colibri-ws/x?pwd=y").unwrap(),
            "127.0.0.1:9"
        );
        assert!(authority("wss://example.org/").is_err());
    }
}
