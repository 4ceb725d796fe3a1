//! AFL++ harness for [`relais_fuzz::rtp`]; see docs/fuzzing.md.

fn main() {
    afl::fuzz!(|data: &[u8]| relais_fuzz::rtp(data));
}
