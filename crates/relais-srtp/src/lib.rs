//! SRTP and SRTCP contexts keyed from DTLS-SRTP keying material.
