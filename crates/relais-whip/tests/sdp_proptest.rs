//! Arbitrary input never panics the parser or the answerer.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests: a panic is a test failure"
)]

use proptest::prelude::*;
use relais_whip::sdp::{answer, parse, AnswerParams, Direction};

const FIXTURES: [&str; 4] = [
    include_str!("fixtures/chromium_whip_offer.sdp"),
    include_str!("fixtures/chromium_whep_offer.sdp"),
    include_str!("fixtures/gstreamer_offer.sdp"),
    include_str!("fixtures/aiortc_offer.sdp"),
];

fn params() -> AnswerParams {
    AnswerParams::new(
        "u",
        "p",
        "sha-256 AB:CD".parse().unwrap(),
        Direction::RecvOnly,
    )
}

/// Parses, answers, and checks that what parses also round-trips.
fn exercise(text: &str) {
    if let Ok(sdp) = parse(text) {
        let written = sdp.to_string();
        let again = parse(&written);
        assert_eq!(
            again.as_ref(),
            Ok(&sdp),
            "written SDP must re-parse to the same model:\n{written}"
        );
        if let Ok(ans) = answer(&sdp, &params()) {
            assert!(parse(&ans.to_string()).is_ok());
        }
    }
}

/// A token from SDP's vocabulary, to get past the first checks more often than noise does.
fn sdp_token() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just(" ".to_owned()),
        Just(":".to_owned()),
        Just("/".to_owned()),
        Just(";".to_owned()),
        Just("~".to_owned()),
        Just("*".to_owned()),
        Just("=".to_owned()),
        Just("\r".to_owned()),
        Just("é".to_owned()),
        Just("0".to_owned()),
        Just("99999999999999999999".to_owned()),
        Just("-1".to_owned()),
        Just("typ".to_owned()),
        Just("send".to_owned()),
        "[a-z0-9 :/;=~,.-]{0,12}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_strings_never_panic(text in any::<String>()) {
        exercise(&text);
    }

    #[test]
    fn arbitrary_lines_after_header_never_panic(lines in proptest::collection::vec("[vosmcatb]=[ -~]{0,40}", 0..30)) {
        let text = format!("v=0\no=- 1 1 IN IP4 0.0.0.0\n{}", lines.join("\n"));
        exercise(&text);
    }

    #[test]
    fn mutated_fixture_lines_never_panic(
        fixture in 0..FIXTURES.len(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>(), sdp_token(), 0u8..4), 1..6),
    ) {
        let source = FIXTURES.get(fixture).copied().unwrap_or_default();
        let mut lines: Vec<String> = source.lines().map(str::to_owned).collect();
        for (line_index, char_index, token, op) in edits {
            let i = line_index.index(lines.len());
            let line = &mut lines[i];
            let boundaries: Vec<usize> = line.char_indices().map(|(b, _)| b).chain([line.len()]).collect();
            let at = boundaries[char_index.index(boundaries.len())];
            match op {
                // Insert a token.
                0 => line.insert_str(at, &token),
                // Cut the line short.
                1 => line.truncate(at),
                // Replace the rest of the line.
                2 => { line.truncate(at); line.push_str(&token); }
                // Drop the line.
                _ => { lines.remove(i); if lines.is_empty() { break; } }
            }
        }
        exercise(&lines.join("\r\n"));
    }
}
