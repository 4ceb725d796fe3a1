//! The stateless Colibri2 rules (`ConferenceModify::validate`) on Jitsi's own requests, with
//! the outcomes of fixtures/README.md. Outcomes that need conference state (UNKNOWN_ENDPOINT,
//! CONFERENCE_NOT_FOUND, …) are the backend's; http_router.rs checks them end to end.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests: a panic is a test failure"
)]

use relais_colibri::colibri2::{
    from_json_slice, ColibriError, ConferenceModify, Endpoint, Reason, Transport,
};

fn request(relative: &str) -> ConferenceModify {
    let path = format!(
        "{}/tests/fixtures/colibri2/{relative}",
        env!("CARGO_MANIFEST_DIR")
    );
    from_json_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// A PATCH body gets its meeting-id from the URL before validation.
fn patched(relative: &str) -> ConferenceModify {
    let mut request = request(relative);
    assert!(request.meeting_id.is_none(), "{relative} is a PATCH body");
    request.meeting_id = Some("beccf2ed-5441-4bfe-96d6-f0f3a6796378".to_owned());
    request
}

fn reason(result: Result<(), ColibriError>) -> Option<Reason> {
    result.err().map(|e| e.reason)
}

#[test]
fn fixture_outcomes() {
    let cases: &[(&str, Option<Reason>)] = &[
        // connects to a transcriber and a recorder: relais exports no media.
        (
            "rest-doc/create-conference.request.json",
            Some(Reason::FeatureNotImplemented),
        ),
        // An endpoint update without `create`: valid; the backend answers UNKNOWN_ENDPOINT
        // while the endpoint does not exist.
        (
            "serializer-cases/01-endpoint-with-sources-same-as-colibri2iqtest.json",
            None,
        ),
        (
            "serializer-cases/02-something-that-should-be-exercising-all-the-fields.json",
            Some(Reason::FeatureNotImplemented),
        ),
        (
            "serializer-cases/04-update-endpoint-with-transport-and-sources.json",
            None,
        ),
        // Cascading is not there yet.
        (
            "serializer-cases/05-relay-with-endpoints.json",
            Some(Reason::FeatureNotImplemented),
        ),
        ("serializer-cases/06-expire-conference.json", None),
        (
            "serializer-cases/07-connect-with-http-headers.json",
            Some(Reason::FeatureNotImplemented),
        ),
        (
            "serializer-cases/08-connect-with-ping.json",
            Some(Reason::FeatureNotImplemented),
        ),
        (
            "serializer-cases/09-connect-with-http-headers-and-ping.json",
            Some(Reason::FeatureNotImplemented),
        ),
        (
            "serializer-cases/10-connect-with-exports-and-requests.json",
            Some(Reason::FeatureNotImplemented),
        ),
    ];
    for (relative, expected) in cases {
        assert_eq!(
            reason(request(relative).validate()),
            *expected,
            "{relative}"
        );
    }
    for relative in [
        "rest-doc/update-endpoint.request.json",
        "rest-doc/expire-conference.request.json",
    ] {
        assert_eq!(reason(patched(relative).validate()), None, "{relative}");
    }
}

#[test]
fn the_rest_doc_create_request_without_connects_is_accepted() {
    let mut request = request("rest-doc/create-conference.request.json");
    request.connects = None;
    assert_eq!(request.validate(), Ok(()));
    // An empty list asks for nothing either.
    request.connects = Some(Vec::new());
    assert_eq!(request.validate(), Ok(()));
}

#[test]
fn feature_refusals_name_the_feature_and_not_the_conference() {
    let request = request("rest-doc/create-conference.request.json");
    let error = request.validate().unwrap_err();
    assert_eq!(error.http_status(), 501);
    assert!(error.message.contains("connects"), "{}", error.message);
    assert!(!error.message.contains("hardencounterssinkright"));
    let relays = self::request("serializer-cases/05-relay-with-endpoints.json")
        .validate()
        .unwrap_err();
    assert!(relays.message.contains("relays"), "{}", relays.message);
    assert!(!relays.message.contains("10.44.106.218"));
}

#[test]
fn meeting_id_is_required_and_bounded() {
    let mut request = request("serializer-cases/06-expire-conference.json");
    request.meeting_id = None;
    assert_eq!(reason(request.validate()), Some(Reason::BadRequest));
    for bad in [
        String::new(),
        "a/b".to_owned(),
        "x".repeat(257),
        "a b".to_owned(),
    ] {
        request.meeting_id = Some(bad.clone());
        assert_eq!(
            reason(request.validate()),
            Some(Reason::BadRequest),
            "{bad:?}"
        );
    }
    request.meeting_id = Some("x".repeat(256));
    assert_eq!(request.validate(), Ok(()));
}

fn creating(endpoint: Endpoint) -> ConferenceModify {
    ConferenceModify {
        meeting_id: Some("m".to_owned()),
        create: Some(true),
        endpoints: Some(vec![endpoint]),
        ..ConferenceModify::default()
    }
}

fn good_endpoint() -> Endpoint {
    Endpoint {
        create: Some(true),
        transport: Some(Transport {
            ice_controlling: Some(true),
            ..Transport::default()
        }),
        capabilities: Some(vec!["source-names".to_owned()]),
        ..Endpoint::new("79f0273d")
    }
}

#[test]
fn endpoint_create_rules() {
    assert_eq!(creating(good_endpoint()).validate(), Ok(()));

    let without_transport = Endpoint {
        transport: None,
        ..good_endpoint()
    };
    let error = creating(without_transport).validate().unwrap_err();
    assert_eq!(error.reason, Reason::BadRequest);
    assert!(error.message.contains("endpoints[0]") && error.message.contains("transport"));

    let without_source_names = Endpoint {
        capabilities: Some(vec!["ssrc-rewriting".to_owned()]),
        ..good_endpoint()
    };
    let error = creating(without_source_names).validate().unwrap_err();
    assert_eq!(error.reason, Reason::BadRequest);
    assert!(error.message.contains("source-names"));

    // Expiring needs neither.
    let expire = Endpoint {
        expire: Some(true),
        ..Endpoint::new("79f0273d")
    };
    assert_eq!(creating(expire).validate(), Ok(()));
}

#[test]
fn endpoint_ids_are_checked_and_unique() {
    for bad in ["", "a/b", "a?b", "a b", "a%2F"] {
        assert_eq!(
            reason(
                creating(Endpoint {
                    id: bad.to_owned(),
                    ..good_endpoint()
                })
                .validate()
            ),
            Some(Reason::BadRequest),
            "{bad:?}"
        );
    }
    let mut twice = creating(good_endpoint());
    twice.endpoints.as_mut().unwrap().push(good_endpoint());
    let error = twice.validate().unwrap_err();
    assert_eq!(error.reason, Reason::BadRequest);
    assert!(error.message.contains("endpoints[1]"));
}

#[test]
fn visitors_announce_no_sources() {
    let mut request =
        request("serializer-cases/04-update-endpoint-with-transport-and-sources.json");
    request.endpoints.as_mut().unwrap()[0].muc_role = Some("visitor".to_owned());
    assert_eq!(reason(request.validate()), Some(Reason::BadRequest));
    request.endpoints.as_mut().unwrap()[0].sources = Some(Vec::new());
    assert_eq!(request.validate(), Ok(()));
}

#[test]
fn reasons_map_to_the_statuses_of_jvb_conditions() {
    let table = [
        (Reason::BadRequest, 400, "bad-request", "BAD_REQUEST"),
        (
            Reason::ConferenceNotFound,
            404,
            "item-not-found",
            "CONFERENCE_NOT_FOUND",
        ),
        (
            Reason::UnknownEndpoint,
            404,
            "item-not-found",
            "UNKNOWN_ENDPOINT",
        ),
        (
            Reason::ConferenceAlreadyExists,
            409,
            "conflict",
            "CONFERENCE_ALREADY_EXISTS",
        ),
        (Reason::Conflict, 409, "conflict", "CONFLICT"),
        (
            Reason::Unspecified,
            500,
            "internal-server-error",
            "UNSPECIFIED",
        ),
        (
            Reason::FeatureNotImplemented,
            501,
            "feature-not-implemented",
            "FEATURE_NOT_IMPLEMENTED",
        ),
        (
            Reason::GracefulShutdown,
            503,
            "service-unavailable",
            "GRACEFUL_SHUTDOWN",
        ),
    ];
    for (reason, status, condition, name) in table {
        assert_eq!(reason.http_status(), status);
        assert_eq!(reason.xmpp_condition(), condition);
        assert_eq!(reason.to_string(), name);
        assert_eq!(serde_json::to_value(reason).unwrap(), name);
    }
    let body = serde_json::to_value(ColibriError::conference_not_found().to_response()).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"error": {"reason": "CONFERENCE_NOT_FOUND", "message": "conference not found"}})
    );
}
