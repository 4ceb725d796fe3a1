//! AFL++ harness for [`relais_fuzz::stun`]; see docs/fuzzing.md.

fn main() {
    afl::fuzz!(|data: &[u8]| relais_fuzz::stun(data));
}
