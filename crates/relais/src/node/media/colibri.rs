//! The media task's side of Jitsi Meet conferences: Colibri2 allocation applied to
//! [`Conference`]s and endpoints, the bridge channel's inputs and the conferences' outputs.
//!
//! A Colibri2 endpoint is created with a full ICE agent in the role the request gives
//! (controlling when `ice-controlling` is true, as Jicofo asks) and local credentials for
//! the answer; the client's credentials, candidates and DTLS fingerprint may come with the
//! create or in a later PATCH, and the DTLS handshake starts once the fingerprint is known.

use std::collections::HashMap;
use std::time::Instant;

use rand::Rng;
use relais_colibri::bridge_channel::{
    BridgeChannelMessage, ConnectionStats, DominantSpeakerEndpointChangeEvent,
    EndpointConnectivityStatusChangeEvent, ForwardedSources, SenderSourceConstraints,
};
use relais_colibri::colibri2::{ColibriError, ConferenceModify, Endpoint as ColibriEndpoint};
use relais_conference::allocation::ReceiverConstraintsUpdate;
use relais_conference::{
    Conference, ConferenceConfig, ConferenceEvent, ConferenceOutput, EndpointId, MediaKind,
};
use relais_srtp::DtlsRole;
use relais_transport::dtls_srtp::{DtlsSrtpConfig, DtlsSrtpHandshake, Fingerprint};
use relais_transport::ice::{IceAgent, IceConfig, IceCredentials};
use relais_whip::http::SessionKind;
use tokio::sync::mpsc;

use super::{CloseReason, MediaTask, TokenBucket};
use crate::logging::stream_tag;
use crate::node::bridge_io::{
    BridgeCounter, BridgeInput, BridgeRefusal, BridgeSession, BRIDGE_OUTGOING_QUEUE,
};
use crate::node::colibri::{
    endpoint_description, published_sources, remote_candidates, AllocatedEndpoint, ColibriOutcome,
};
use crate::node::endpoint::{drive_dtls, Endpoint, DTLS_INBOUND_QUEUE};

/// One Jitsi Meet conference on this node.
pub(crate) struct ColibriConference {
    pub(crate) conference: Conference,
    /// Colibri2 endpoint id → endpoint.
    pub(crate) endpoints: HashMap<String, EndpointId>,
}

/// What a Colibri2 endpoint adds to an [`Endpoint`].
pub(crate) struct ColibriLink {
    pub(crate) meeting_id: String,
    /// The Colibri2 endpoint id.
    pub(crate) name: String,
    /// The connected bridge channel, if any.
    pub(crate) bridge: Option<mpsc::Sender<String>>,
}

/// Constant-time comparison (credentials).
fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl MediaTask {
    /// Applies a validated `conference-modify`.
    pub(super) fn colibri_modify(
        &mut self,
        now: Instant,
        request: ConferenceModify,
    ) -> Result<ColibriOutcome, ColibriError> {
        let meeting_id = request.meeting_id.clone().unwrap_or_default();
        let exists = self.conferences.contains_key(&meeting_id);
        if request.expires_conference() {
            if !exists {
                return Err(ColibriError::conference_not_found());
            }
            self.expire_conference(now, &meeting_id);
            return Ok(ColibriOutcome::default());
        }
        // Everything that can be checked without state is checked first, so that a refused
        // request changes nothing; what can only fail while applying is rolled back.
        for endpoint in request.endpoints() {
            Self::check_endpoint_request(endpoint)?;
        }
        let mut outcome = ColibriOutcome::default();
        let mut created_conference = false;
        if request.creates_conference() {
            if exists {
                return Err(ColibriError::conference_already_exists());
            }
            if self.draining.load(std::sync::atomic::Ordering::Relaxed) {
                self.stats.refused_draining += 1;
                return Err(ColibriError::graceful_shutdown());
            }
            if self.streams.len() as u64 >= self.limits.max_conferences {
                self.stats.refused_too_many_conferences += 1;
                return Err(ColibriError::new(
                    relais_colibri::colibri2::Reason::Unspecified,
                    "too many conferences on this node",
                ));
            }
            let mut rng = rand::rng();
            let feedback_ssrcs = (rng.random::<u32>() | 1, rng.random::<u32>() | 1);
            self.conferences.insert(
                meeting_id.clone(),
                ColibriConference {
                    conference: Conference::new(now, ConferenceConfig::default()),
                    endpoints: HashMap::new(),
                },
            );
            outcome.feedback_ssrcs = Some(feedback_ssrcs);
            created_conference = true;
            tracing::debug!("conference #{} created", stream_tag(&meeting_id));
        } else if !exists {
            return Err(ColibriError::conference_not_found());
        }
        // Check every endpoint before changing any, so a refused request changes nothing.
        let checked = self.check_endpoints(&meeting_id, &request);
        let result = checked.and_then(|()| self.apply_endpoints(now, &meeting_id, &request));
        match result {
            Ok(applied) => {
                outcome.endpoints = applied.endpoints;
                outcome.updated = applied.updated;
                Ok(outcome)
            }
            Err((error, created)) => {
                for id in created {
                    self.close(now, id, CloseReason::Deleted);
                }
                if created_conference {
                    self.conferences.remove(&meeting_id);
                }
                Err(error)
            }
        }
    }

    /// The stateless checks of one endpoint of a request: its media, sources and
    /// credentials parse.
    fn check_endpoint_request(endpoint: &ColibriEndpoint) -> Result<(), ColibriError> {
        endpoint_description(&endpoint.id, endpoint.medias.as_deref().unwrap_or_default())?;
        if let Some(sources) = &endpoint.sources {
            published_sources(sources)?;
        }
        let ice_udp = endpoint
            .transport
            .as_ref()
            .and_then(|t| t.transport.as_ref());
        if let Some((Some(ufrag), Some(pwd))) = ice_udp.map(|t| (&t.ufrag, &t.pwd)) {
            IceCredentials::new(ufrag.as_str(), pwd.as_str())
                .map_err(|_| ColibriError::bad_request("invalid ICE ufrag or pwd"))?;
        }
        Ok(())
    }

    /// The checks of a request against the conference's state.
    fn check_endpoints(
        &mut self,
        meeting_id: &str,
        request: &ConferenceModify,
    ) -> Result<(), (ColibriError, Vec<EndpointId>)> {
        let known = |id: &str| {
            self.conferences
                .get(meeting_id)
                .is_some_and(|c| c.endpoints.contains_key(id))
        };
        for endpoint in request.endpoints() {
            if endpoint.creates() && known(&endpoint.id) {
                return Err((
                    ColibriError::endpoint_already_exists(&endpoint.id),
                    Vec::new(),
                ));
            }
            if !endpoint.creates() && !endpoint.expires() && !known(&endpoint.id) {
                return Err((ColibriError::unknown_endpoint(&endpoint.id), Vec::new()));
            }
        }
        let size = self.streams.get(meeting_id).copied().unwrap_or(0);
        let creating = request.endpoints().iter().filter(|e| e.creates()).count() as u64;
        if size + creating > self.limits.max_endpoints_per_conference {
            self.stats.refused_conference_full += 1;
            return Err((
                ColibriError::new(
                    relais_colibri::colibri2::Reason::Unspecified,
                    "the conference is full",
                ),
                Vec::new(),
            ));
        }
        Ok(())
    }

    /// Applies the endpoints of a checked request; on failure, the endpoints it created (to
    /// be closed by the caller).
    fn apply_endpoints(
        &mut self,
        now: Instant,
        meeting_id: &str,
        request: &ConferenceModify,
    ) -> Result<ColibriOutcome, (ColibriError, Vec<EndpointId>)> {
        let meeting_id = meeting_id.to_owned();
        let mut outcome = ColibriOutcome::default();
        let mut created = Vec::new();
        for endpoint in request.endpoints() {
            if endpoint.expires() {
                let id = self
                    .conferences
                    .get(&meeting_id)
                    .and_then(|c| c.endpoints.get(&endpoint.id).copied());
                if let Some(id) = id {
                    self.close(now, id, CloseReason::Deleted);
                }
                continue;
            }
            let id = if endpoint.creates() {
                match self.create_colibri_endpoint(now, &meeting_id, endpoint) {
                    Ok(id) => {
                        created.push(id);
                        id
                    }
                    Err(e) => return Err((e, created)),
                }
            } else {
                match self
                    .conferences
                    .get(&meeting_id)
                    .and_then(|c| c.endpoints.get(&endpoint.id).copied())
                {
                    Some(id) => id,
                    None => return Err((ColibriError::unknown_endpoint(&endpoint.id), created)),
                }
            };
            let restarted = match self.apply_endpoint_update(now, &meeting_id, id, endpoint) {
                Ok(restarted) => restarted,
                Err(e) => return Err((e, created)),
            };
            match (endpoint.creates() || restarted, self.endpoints.get(&id)) {
                (true, Some(e)) => outcome.endpoints.push(AllocatedEndpoint {
                    id: endpoint.id.clone(),
                    ufrag: e.ice.local_credentials().ufrag.clone(),
                    pwd: e.ice.local_credentials().pwd.clone(),
                }),
                _ => outcome.updated.push(endpoint.id.clone()),
            }
        }
        Ok(outcome)
    }

    fn expire_conference(&mut self, now: Instant, meeting_id: &str) {
        let ids: Vec<EndpointId> = self
            .conferences
            .get(meeting_id)
            .map(|c| c.endpoints.values().copied().collect())
            .unwrap_or_default();
        for id in ids {
            self.close(now, id, CloseReason::Deleted);
        }
        if let Some(ended) = self.conferences.remove(meeting_id) {
            self.ended_conferences.add(&ended.conference.stats());
        }
        tracing::debug!("conference #{} expired", stream_tag(meeting_id));
    }

    fn create_colibri_endpoint(
        &mut self,
        now: Instant,
        meeting_id: &str,
        request: &ColibriEndpoint,
    ) -> Result<EndpointId, ColibriError> {
        if !self.sessions.take(now) {
            self.stats.refused_rate_limited += 1;
            return Err(ColibriError::new(
                relais_colibri::colibri2::Reason::Unspecified,
                "too many new endpoints per second",
            ));
        }
        let controlling = request
            .transport
            .as_ref()
            .and_then(|t| t.ice_controlling)
            .unwrap_or(true);
        let config = if controlling {
            IceConfig::controlling()
        } else {
            IceConfig::controlled()
        };
        let mut rng = rand::rng();
        let mut ice = IceAgent::new(config, &mut rng, now);
        // One local candidate: the address checks arrive on (see `ice_local`).
        let _ = ice.add_local_candidate(self.ice_local);
        let description =
            endpoint_description(&request.id, request.medias.as_deref().unwrap_or_default())?;
        let id = EndpointId(self.next_id);
        self.next_id += 1;
        let conference = self
            .conferences
            .get_mut(meeting_id)
            .ok_or_else(ColibriError::conference_not_found)?;
        conference
            .conference
            .add_endpoint(now, id, description)
            .map_err(|e| ColibriError::bad_request(e.to_string()))?;
        conference.endpoints.insert(request.id.clone(), id);
        self.by_ufrag
            .insert(ice.local_credentials().ufrag.clone(), id);
        *self.streams.entry(meeting_id.to_owned()).or_default() += 1;
        self.endpoints.insert(
            id,
            Endpoint {
                kind: SessionKind::Publish,
                stream: meeting_id.to_owned(),
                session: String::new(),
                ice_counted: ice.stats(),
                ice,
                previous_ufrag: None,
                remote: None,
                dtls_in: None,
                srtp: None,
                sends_audio: false,
                sends_video: false,
                ice_outcome_counted: false,
                rate: TokenBucket::per_second(self.limits.max_packet_rate_per_source, now),
                created: now,
                colibri: Some(ColibriLink {
                    meeting_id: meeting_id.to_owned(),
                    name: request.id.clone(),
                    bridge: None,
                }),
            },
        );
        self.stats.endpoints_created += 1;
        tracing::debug!(
            "endpoint {} created: Colibri2 in conference #{}, ICE {}",
            id.0,
            stream_tag(meeting_id),
            if controlling {
                "controlling"
            } else {
                "controlled"
            }
        );
        Ok(id)
    }

    /// Transport, media and sources of an endpoint; returns whether ICE restarted.
    fn apply_endpoint_update(
        &mut self,
        now: Instant,
        meeting_id: &str,
        id: EndpointId,
        request: &ColibriEndpoint,
    ) -> Result<bool, ColibriError> {
        let mut restarted = false;
        if let Some(transport) = &request.transport {
            let Some(endpoint) = self.endpoints.get_mut(&id) else {
                return Err(ColibriError::unknown_endpoint(&request.id));
            };
            if transport.ice_restart == Some(true) && !request.creates() {
                let old = endpoint.ice.local_credentials().ufrag.clone();
                let new = endpoint
                    .ice
                    .restart()
                    .map_err(|e| ColibriError::bad_request(format!("ICE restart: {e}")))?;
                if let Some(older) = endpoint.previous_ufrag.replace(old) {
                    if self.by_ufrag.get(&older) == Some(&id) {
                        self.by_ufrag.remove(&older);
                    }
                }
                self.by_ufrag.insert(new.ufrag, id);
                self.stats.ice_restarts += 1;
                restarted = true;
            }
            if let Some(ice_udp) = &transport.transport {
                if let (Some(ufrag), Some(pwd)) = (&ice_udp.ufrag, &ice_udp.pwd) {
                    let credentials = IceCredentials::new(ufrag.as_str(), pwd.as_str())
                        .map_err(|_| ColibriError::bad_request("invalid ICE ufrag or pwd"))?;
                    if endpoint.ice.remote_credentials() != Some(&credentials) {
                        endpoint.ice.set_remote_credentials(credentials);
                    }
                }
                for (address, priority) in remote_candidates(ice_udp) {
                    // Bad or too many candidates are the client's problem: skipped.
                    let _ = endpoint.ice.add_remote_candidate(address, priority);
                }
                let fingerprint = ice_udp
                    .fingerprints
                    .as_deref()
                    .unwrap_or_default()
                    .iter()
                    .find_map(|f| {
                        let hash = f.hash.as_deref().unwrap_or("sha-256");
                        let parsed =
                            Fingerprint::parse(&format!("{hash} {}", f.fingerprint)).ok()?;
                        Some((parsed, f.setup.clone()))
                    });
                if let Some((fingerprint, setup)) = fingerprint {
                    if endpoint.dtls_in.is_none() {
                        // The client's setup decides: active → we are the server;
                        // passive → the client; actpass → we take the server side too,
                        // since Jitsi clients answer with active.
                        let role = match setup.as_deref() {
                            Some("passive") => DtlsRole::Client,
                            _ => DtlsRole::Server,
                        };
                        let (handle, task) = DtlsSrtpHandshake::start(
                            role,
                            &self.certificate,
                            fingerprint,
                            DtlsSrtpConfig::default(),
                        )
                        .map_err(|e| ColibriError::bad_request(format!("DTLS: {e}")))?;
                        let (dtls_in, inbound) = mpsc::channel(DTLS_INBOUND_QUEUE);
                        tokio::spawn(task);
                        tokio::spawn(drive_dtls(id, handle, inbound, self.dtls_events_tx.clone()));
                        endpoint.dtls_in = Some(dtls_in);
                    }
                }
            }
        }
        if request.medias.is_some() && !request.creates() {
            let description =
                endpoint_description(&request.id, request.medias.as_deref().unwrap_or_default())?;
            if let Some(conference) = self.conferences.get_mut(meeting_id) {
                conference
                    .conference
                    .set_endpoint_media(now, id, description.codecs, description.extensions)
                    .map_err(|e| ColibriError::bad_request(e.to_string()))?;
            }
        }
        if let Some(sources) = &request.sources {
            let published = published_sources(sources)?;
            let ssrcs: usize = published.iter().map(|s| s.ssrcs.len() + s.rtx.len()).sum();
            if ssrcs as u64 > self.limits.max_ssrcs_per_endpoint {
                self.stats.refused_too_many_ssrcs += 1;
                return Err(ColibriError::bad_request(format!(
                    "{ssrcs} SSRCs, more than limits.max_ssrcs_per_endpoint {}",
                    self.limits.max_ssrcs_per_endpoint
                )));
            }
            let (audio, video) = (
                published.iter().any(|s| s.kind == MediaKind::Audio),
                published.iter().any(|s| s.kind == MediaKind::Video),
            );
            if let Some(conference) = self.conferences.get_mut(meeting_id) {
                conference
                    .conference
                    .set_sources(now, id, published)
                    .map_err(|e| ColibriError::bad_request(e.to_string()))?;
            }
            if let Some(endpoint) = self.endpoints.get_mut(&id) {
                endpoint.sends_audio = audio;
                endpoint.sends_video = video;
            }
        }
        if let Some(last_n) = &request.initial_last_n {
            if let Some(conference) = self.conferences.get_mut(meeting_id) {
                let update = ReceiverConstraintsUpdate {
                    last_n: Some(last_n.value),
                    ..Default::default()
                };
                let _ = conference
                    .conference
                    .set_receiver_constraints(now, id, update);
            }
        }
        // A new agent or new remote data: let it send its checks now.
        self.drain_ice(now, id);
        Ok(restarted)
    }

    /// Removes a closed endpoint from its conference.
    pub(super) fn colibri_closed(&mut self, now: Instant, id: EndpointId, link: &ColibriLink) {
        if let Some(conference) = self.conferences.get_mut(&link.meeting_id) {
            conference.conference.remove_endpoint(now, id);
            if conference.endpoints.get(&link.name) == Some(&id) {
                conference.endpoints.remove(&link.name);
            }
        }
    }

    /// The speech activity of a conference, as JSON.
    /// JVB's `ConferenceSpeechActivity` debug state: endpoints by speech activity (dominant
    /// first), in last-N order (the same here: relais orders last-N by speech), and the
    /// dominant endpoint (the string "null" without one, as JVB writes it).
    pub(super) fn dominant_speaker_state(&self, meeting_id: &str) -> Option<serde_json::Value> {
        let conference = &self.conferences.get(meeting_id)?.conference;
        let order = conference.speaker_order();
        Some(serde_json::json!({
            "endpointsBySpeechActivity": order,
            "dominantSpeakerIdentification": null,
            "endpointsInLastNOrder": order,
            "dominantEndpoint": conference.dominant_speaker().unwrap_or("null"),
        }))
    }

    pub(super) fn bridge_attach(
        &mut self,
        meeting_id: &str,
        endpoint: &str,
        pwd: &str,
    ) -> Result<BridgeSession, BridgeRefusal> {
        let id = self
            .conferences
            .get(meeting_id)
            .and_then(|c| c.endpoints.get(endpoint).copied())
            .ok_or(BridgeRefusal::Forbidden)?;
        let entry = self
            .endpoints
            .get_mut(&id)
            .ok_or(BridgeRefusal::Forbidden)?;
        if !same_secret(&entry.ice.local_credentials().pwd, pwd) {
            self.stats.bridge_refused += 1;
            return Err(BridgeRefusal::Forbidden);
        }
        let link = entry.colibri.as_mut().ok_or(BridgeRefusal::Forbidden)?;
        let (tx, outgoing) = mpsc::channel(BRIDGE_OUTGOING_QUEUE);
        let catch_up = self
            .conferences
            .get(meeting_id)
            .map(|c| c.conference.catch_up_events(id))
            .unwrap_or_default();
        for event in catch_up {
            if tx.try_send(bridge_message(event).to_json()).is_ok() {
                self.stats.bridge_messages_sent += 1;
            }
        }
        // A newer channel replaces an older one (a reconnecting client).
        link.bridge = Some(tx);
        self.stats.bridge_connected += 1;
        Ok(BridgeSession { id, outgoing })
    }

    pub(super) fn bridge_detach(&mut self, id: EndpointId) {
        if let Some(link) = self.endpoints.get_mut(&id).and_then(|e| e.colibri.as_mut()) {
            if link.bridge.as_ref().is_some_and(|b| b.is_closed()) {
                link.bridge = None;
            }
        }
    }

    pub(super) fn bridge_count(&mut self, counter: BridgeCounter) {
        let stats = &mut self.stats;
        match counter {
            BridgeCounter::Received => stats.bridge_messages_received += 1,
            BridgeCounter::Malformed => stats.bridge_messages_malformed += 1,
            BridgeCounter::UnknownClass => stats.bridge_messages_unknown_class += 1,
            BridgeCounter::Invalid => stats.bridge_messages_invalid += 1,
            BridgeCounter::NotFromClients => stats.bridge_messages_not_from_clients += 1,
        }
    }

    pub(super) fn bridge_input(&mut self, now: Instant, id: EndpointId, input: BridgeInput) {
        let Some(link) = self.endpoints.get(&id).and_then(|e| e.colibri.as_ref()) else {
            return;
        };
        let (meeting_id, name) = (link.meeting_id.clone(), link.name.clone());
        let Some(conference) = self.conferences.get_mut(&meeting_id) else {
            return;
        };
        let result = match input {
            BridgeInput::ReceiverVideoConstraints(update) => conference
                .conference
                .set_receiver_constraints(now, id, update),
            BridgeInput::SourceVideoType { source, video_type } => conference
                .conference
                .set_video_type(now, id, &source, video_type),
            BridgeInput::AudioSubscription(subscription) => conference
                .conference
                .set_audio_subscription(id, subscription),
            BridgeInput::EndpointMessage { to, mut message } => {
                message.insert("from".to_owned(), serde_json::Value::String(name.clone()));
                let text = serde_json::Value::Object(message).to_string();
                let targets: Vec<EndpointId> = match to {
                    Some(to) => conference.endpoints.get(&to).copied().into_iter().collect(),
                    None => conference
                        .endpoints
                        .values()
                        .copied()
                        .filter(|e| *e != id)
                        .collect(),
                };
                for target in targets {
                    self.send_bridge_text(target, text.clone());
                }
                Ok(())
            }
        };
        if result.is_err() {
            self.stats.bridge_messages_invalid += 1;
        }
    }

    fn send_bridge_text(&mut self, to: EndpointId, text: String) {
        let Some(bridge) = self
            .endpoints
            .get(&to)
            .and_then(|e| e.colibri.as_ref())
            .and_then(|l| l.bridge.as_ref())
        else {
            self.stats.bridge_messages_undeliverable += 1;
            return;
        };
        if bridge.try_send(text).is_err() {
            self.stats.bridge_messages_undeliverable += 1;
        } else {
            self.stats.bridge_messages_sent += 1;
        }
    }

    /// Protects and sends what the conferences produced; delivers their events.
    ///
    /// The conferences are taken out of `self` meanwhile (nothing below reaches them through
    /// `self`), so the loop needs no per-call list of meeting ids.
    pub(super) fn drain_conferences(&mut self) {
        let mut conferences = std::mem::take(&mut self.conferences);
        for colibri in conferences.values_mut() {
            self.drain_conference(&mut colibri.conference);
        }
        self.conferences = conferences;
    }

    fn drain_conference(&mut self, conference: &mut Conference) {
        while let Some(output) = conference.poll_output() {
            match output {
                ConferenceOutput::Rtp { to, packet } => {
                    if let Some(unsent) = self.protect_and_queue(to, packet, true) {
                        conference.recycle(unsent);
                    }
                }
                ConferenceOutput::Rtcp { to, packet } => {
                    if let Some(unsent) = self.protect_and_queue(to, packet, false) {
                        conference.recycle(unsent);
                    }
                }
                ConferenceOutput::Event { to, event } => {
                    let message = bridge_message(event);
                    self.send_bridge_text(to, message.to_json());
                }
            }
        }
        self.flush_outbound();
        for spent in self.outbound.take_spent() {
            conference.recycle(spent);
        }
    }
}

/// The bridge-channel message for a conference event.
fn bridge_message(event: ConferenceEvent) -> BridgeChannelMessage {
    match event {
        ConferenceEvent::ForwardedSources { sources } => {
            BridgeChannelMessage::ForwardedSources(ForwardedSources {
                forwarded_sources: sources,
            })
        }
        ConferenceEvent::DominantSpeaker {
            speaker,
            previous,
            silence,
        } => BridgeChannelMessage::DominantSpeakerEndpointChangeEvent(
            DominantSpeakerEndpointChangeEvent {
                dominant_speaker_endpoint: speaker,
                previous_speakers: Some(previous),
                silence,
            },
        ),
        ConferenceEvent::ConnectionStats {
            estimated_downlink_bps,
        } => BridgeChannelMessage::ConnectionStats(ConnectionStats {
            estimated_downlink_bandwidth: estimated_downlink_bps,
        }),
        ConferenceEvent::EndpointConnectivity { endpoint, active } => {
            BridgeChannelMessage::EndpointConnectivityStatusChangeEvent(
                EndpointConnectivityStatusChangeEvent { endpoint, active },
            )
        }
        ConferenceEvent::SenderSourceConstraints { source, max_height } => {
            BridgeChannelMessage::SenderSourceConstraints(SenderSourceConstraints {
                source_name: source,
                max_height,
            })
        }
    }
}
