//! The relais node binary.
//!
//! For now it only reports its version: the forwarding node (ICE, DTLS-SRTP, WHIP/WHEP) is built
//! on top of the packet and SRTP layers in the next steps.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    println!("relais {}", env!("CARGO_PKG_VERSION"));
    println!(
        "packet layer: relais-rtp; SRTP: relais-srtp (AEAD_AES_128_GCM in place over ring, \
         AES_CM_128_HMAC_SHA1_80 through webrtc-srtp)"
    );
    println!("the forwarding node is not built yet: this binary only prints its version");
}
