//! AFL++ harness for [`relais_fuzz::codec`]; see docs/fuzzing.md.

fn main() {
    afl::fuzz!(|data: &[u8]| relais_fuzz::codec(data));
}
