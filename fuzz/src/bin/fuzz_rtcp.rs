//! AFL++ harness for [`relais_fuzz::rtcp`]; see docs/fuzzing.md.

fn main() {
    afl::fuzz!(|data: &[u8]| relais_fuzz::rtcp(data));
}
