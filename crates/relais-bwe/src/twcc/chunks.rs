//! Packet status chunks: encoding a feedback's status symbols (the recorder) and walking a
//! received feedback's statuses (the send history).

use relais_rtp::rtcp::feedback::{twcc_run_length, twcc_status_vector, MAX_RUN_LENGTH};
use relais_rtp::rtcp::packets::{PacketStatusChunk, SymbolTypeTcc, TransportLayerCc};
use relais_rtp::rtcp::RtcpError;

/// Symbols a two-bit status vector chunk holds.
const TWO_BIT_CAPACITY: usize = 7;

/// Symbols a one-bit status vector chunk holds.
const ONE_BIT_CAPACITY: usize = 14;

/// One encoded chunk, before it becomes the `rtcp` crate's type.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Chunk {
    /// `len` packets with the same symbol.
    Run(SymbolTypeTcc, u16),
    /// Up to 7 symbols (two-bit vector) or 8 to 14 (one-bit vector, no large deltas).
    Vector(Vec<SymbolTypeTcc>),
}

/// Incremental chunk encoder, in the manner of libwebrtc's `TransportFeedback::LastChunk`:
/// symbols accumulate in the open chunk for as long as some chunk type can hold them all;
/// when the next symbol does not fit, the open chunk is emitted (a two-bit vector keeps the
/// symbols after its first 7 open).
#[derive(Debug, Clone)]
pub(super) struct ChunkEncoder {
    chunks: Vec<Chunk>,
    /// The open chunk's first symbols (all of them while it has at most 14).
    open: [SymbolTypeTcc; ONE_BIT_CAPACITY],
    /// Symbols in the open chunk (more than 14 only when they are all the same).
    size: usize,
    all_same: bool,
    has_large: bool,
}

impl ChunkEncoder {
    pub(super) fn new() -> Self {
        Self {
            chunks: Vec::new(),
            open: [SymbolTypeTcc::PacketNotReceived; ONE_BIT_CAPACITY],
            size: 0,
            all_same: true,
            has_large: false,
        }
    }

    fn first(&self) -> SymbolTypeTcc {
        self.open
            .first()
            .copied()
            .unwrap_or(SymbolTypeTcc::PacketNotReceived)
    }

    fn can_add(&self, symbol: SymbolTypeTcc) -> bool {
        if self.size < TWO_BIT_CAPACITY {
            return true;
        }
        if self.size < ONE_BIT_CAPACITY
            && !self.has_large
            && symbol != SymbolTypeTcc::PacketReceivedLargeDelta
        {
            return true;
        }
        self.size < usize::from(MAX_RUN_LENGTH) && self.all_same && symbol == self.first()
    }

    /// Encoded bytes of all chunks (the open one included) once `symbol` is added.
    pub(super) fn bytes_with(&self, symbol: SymbolTypeTcc) -> usize {
        let chunks = if self.can_add(symbol) {
            self.chunks.len() + 1
        } else {
            self.chunks.len() + 2
        };
        2 * chunks
    }

    pub(super) fn add(&mut self, symbol: SymbolTypeTcc) {
        if !self.can_add(symbol) {
            self.emit();
        }
        self.push(symbol);
    }

    fn push(&mut self, symbol: SymbolTypeTcc) {
        if let Some(slot) = self.open.get_mut(self.size) {
            *slot = symbol;
        }
        self.all_same = self.size == 0 || (self.all_same && symbol == self.first());
        self.has_large |= symbol == SymbolTypeTcc::PacketReceivedLargeDelta;
        self.size += 1;
    }

    fn clear(&mut self) {
        self.size = 0;
        self.all_same = true;
        self.has_large = false;
    }

    fn open_symbols(&self, range: std::ops::Range<usize>) -> Vec<SymbolTypeTcc> {
        self.open.get(range).map(<[_]>::to_vec).unwrap_or_default()
    }

    fn run(&self) -> Chunk {
        Chunk::Run(
            self.first(),
            u16::try_from(self.size).unwrap_or(MAX_RUN_LENGTH),
        )
    }

    /// Close the open chunk because the next symbol does not fit it.
    fn emit(&mut self) {
        if self.all_same {
            self.chunks.push(self.run());
            self.clear();
        } else if self.size >= ONE_BIT_CAPACITY {
            self.chunks
                .push(Chunk::Vector(self.open_symbols(0..ONE_BIT_CAPACITY)));
            self.clear();
        } else {
            self.chunks
                .push(Chunk::Vector(self.open_symbols(0..TWO_BIT_CAPACITY)));
            let rest = self.open_symbols(TWO_BIT_CAPACITY..self.size);
            self.clear();
            for symbol in rest {
                self.push(symbol);
            }
        }
    }

    /// All chunks, the open one closed as the smallest chunk that holds it.
    pub(super) fn finish(mut self) -> Result<Vec<PacketStatusChunk>, RtcpError> {
        if self.size > 0 {
            let last = if self.all_same {
                self.run()
            } else {
                Chunk::Vector(self.open_symbols(0..self.size.min(ONE_BIT_CAPACITY)))
            };
            self.chunks.push(last);
        }
        self.chunks
            .into_iter()
            .map(|chunk| match chunk {
                Chunk::Run(symbol, len) => twcc_run_length(symbol, len),
                Chunk::Vector(symbols) => twcc_status_vector(&symbols),
            })
            .collect()
    }
}

/// What a feedback says about one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Status {
    /// Not received (yet).
    Lost,
    /// Received, this many µs after the previous received packet (or the reference time).
    Received(i64),
    /// Received, but without a receive delta (the reserved symbol): no arrival time.
    ReceivedWithoutDelta,
}

/// Call `f(index, status)` for each of the feedback's `packet_status_count` packets, in
/// order, pairing receive deltas with the symbols that carry them. Stops early if the chunks
/// or deltas run out (possible only for a struct not produced by the parser).
///
/// Vector chunks may cover more symbols than the status count (the last chunk is filled
/// up); those are not packets and are skipped.
pub(super) fn for_each_status(feedback: &TransportLayerCc, mut f: impl FnMut(u16, Status)) {
    let count = feedback.packet_status_count;
    let mut deltas = feedback.recv_deltas.iter();
    let mut index: u16 = 0;
    let mut visit = |symbol: SymbolTypeTcc, index: u16| -> bool {
        let status = match symbol {
            SymbolTypeTcc::PacketNotReceived => Status::Lost,
            SymbolTypeTcc::PacketReceivedWithoutDelta => Status::ReceivedWithoutDelta,
            SymbolTypeTcc::PacketReceivedSmallDelta | SymbolTypeTcc::PacketReceivedLargeDelta => {
                match deltas.next() {
                    Some(delta) => Status::Received(delta.delta),
                    None => return false,
                }
            }
        };
        f(index, status);
        true
    };
    for chunk in &feedback.packet_chunks {
        match chunk {
            PacketStatusChunk::RunLengthChunk(run) => {
                for _ in 0..run.run_length {
                    if index >= count || !visit(run.packet_status_symbol, index) {
                        return;
                    }
                    index += 1;
                }
            }
            PacketStatusChunk::StatusVectorChunk(vector) => {
                for &symbol in &vector.symbol_list {
                    if index >= count || !visit(symbol, index) {
                        return;
                    }
                    index += 1;
                }
            }
        }
        if index >= count {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use SymbolTypeTcc::{
        PacketNotReceived as N, PacketReceivedLargeDelta as L, PacketReceivedSmallDelta as S,
    };

    fn encode(symbols: &[SymbolTypeTcc]) -> Vec<PacketStatusChunk> {
        let mut encoder = ChunkEncoder::new();
        let mut bytes = 0;
        for &symbol in symbols {
            bytes = encoder.bytes_with(symbol);
            encoder.add(symbol);
        }
        let chunks = encoder.finish().unwrap_or_default();
        assert_eq!(bytes, 2 * chunks.len());
        chunks
    }

    fn decode(chunks: Vec<PacketStatusChunk>, count: usize) -> Vec<SymbolTypeTcc> {
        let mut out = Vec::new();
        for chunk in chunks {
            match chunk {
                PacketStatusChunk::RunLengthChunk(run) => {
                    out.extend(std::iter::repeat_n(
                        run.packet_status_symbol,
                        usize::from(run.run_length),
                    ));
                }
                PacketStatusChunk::StatusVectorChunk(vector) => out.extend(vector.symbol_list),
            }
        }
        out.truncate(count);
        out
    }

    #[test]
    fn chunks_round_trip() {
        let cases: [Vec<SymbolTypeTcc>; 5] = [
            vec![S],
            vec![S; 20],
            vec![N; 9000],
            [
                vec![S; 3],
                vec![L],
                vec![N; 30],
                vec![S, N, S, S, L, S, N, S, S, S],
            ]
            .concat(),
            [[S, N].repeat(20), vec![L; 5], vec![S; 13]].concat(),
        ];
        for symbols in cases {
            let chunks = encode(&symbols);
            assert_eq!(decode(chunks, symbols.len()), symbols);
        }
    }

    #[test]
    fn long_runs_and_mixed_vectors_are_compact() {
        assert_eq!(encode(&[N; 9000]).len(), 2);
        assert_eq!(encode(&[S, N].repeat(7)).len(), 1);
        assert_eq!(encode(&[S, L].repeat(7)).len(), 2);
    }
}
