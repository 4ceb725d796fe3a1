//! AFL++ harness for [`relais_fuzz::srtp`]; see docs/fuzzing.md.

fn main() {
    afl::fuzz!(|data: &[u8]| relais_fuzz::srtp(data));
}
