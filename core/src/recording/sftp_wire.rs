//! SFTP v3 framing (draft-ietf-secsh-filexfer-02): `uint32 length`, `byte type`, then
//! `length - 1` bytes of body, over a byte stream that arrives in arbitrary pieces.
//!
//! The [`Framer`] keeps at most [`PREFIX_LIMIT`] bytes of each packet (enough for the fields an
//! audit needs: ids, handles, paths) and counts the rest without storing it, so a 256 KiB
//! `WRITE` costs no more memory than a `REMOVE`. A length over [`MAX_PACKET`] (OpenSSH's own
//! limit) means the stream is not SFTP (or not in step with it): the framer stops for good.

/// Largest packet accepted (OpenSSH's `SFTP_MAX_MSG_LENGTH`, 256 KiB).
pub const MAX_PACKET: u32 = 256 * 1024;

/// Bytes of each packet kept for parsing (type byte included); the rest is counted only.
pub const PREFIX_LIMIT: usize = 8 * 1024;

/// Bytes kept of a `WRITE` (type, id, handle of at most 256 bytes, offset, data length): its
/// data is counted, never copied.
pub const WRITE_PREFIX: usize = 1 + 4 + 4 + 256 + 8 + 4;

/// Bytes kept of a `DATA` reply (type, id): the file's bytes are not needed.
pub const DATA_PREFIX: usize = 1 + 4;

/// How much of a packet of type `kind` is kept.
fn keep(kind: u8) -> usize {
    match kind {
        kind::WRITE => WRITE_PREFIX,
        kind::DATA => DATA_PREFIX,
        _ => PREFIX_LIMIT,
    }
}

/// Packet types used here.
#[allow(missing_docs)]
pub mod kind {
    pub const INIT: u8 = 1;
    pub const VERSION: u8 = 2;
    pub const OPEN: u8 = 3;
    pub const CLOSE: u8 = 4;
    pub const WRITE: u8 = 6;
    pub const DATA: u8 = 103;
    pub const SETSTAT: u8 = 9;
    pub const FSETSTAT: u8 = 10;
    pub const REMOVE: u8 = 13;
    pub const MKDIR: u8 = 14;
    pub const RMDIR: u8 = 15;
    pub const RENAME: u8 = 18;
    pub const SYMLINK: u8 = 20;
    pub const STATUS: u8 = 101;
    pub const HANDLE: u8 = 102;
    pub const EXTENDED: u8 = 200;
}

/// One packet as the framer saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    /// The type byte.
    pub kind: u8,
    /// The first bytes of the body (after the type byte), at most `PREFIX_LIMIT - 1` (less for
    /// `WRITE` and `DATA`).
    pub body: Vec<u8>,
    /// The body's full length.
    pub body_len: u32,
}

impl Packet {
    /// Whether `body` is the whole body.
    pub fn complete(&self) -> bool {
        self.body.len() == self.body_len as usize
    }
}

/// Why the framer stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Desync {
    /// A length field of 0 (no type byte).
    EmptyPacket,
    /// A length field over [`MAX_PACKET`].
    Oversize(u32),
}

/// Where the framer is in the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    /// Reading the 4-byte length (bytes so far).
    Length { have: [u8; 4], len: usize },
    /// Reading a packet of `total` bytes (type included), `seen` so far, the first ones kept.
    Packet {
        total: u32,
        seen: u32,
        kept: Vec<u8>,
    },
    /// Not SFTP: everything after is ignored.
    Stopped(Desync),
}

/// Cuts a byte stream into SFTP packets.
#[derive(Clone, Debug)]
pub struct Framer {
    state: State,
}

impl Default for Framer {
    fn default() -> Self {
        Self::new()
    }
}

impl Framer {
    /// A framer at the start of a stream.
    pub fn new() -> Self {
        Self {
            state: State::Length {
                have: [0; 4],
                len: 0,
            },
        }
    }

    /// Why it stopped, if it did.
    pub fn stopped(&self) -> Option<Desync> {
        match self.state {
            State::Stopped(d) => Some(d),
            _ => None,
        }
    }

    /// Feeds the next bytes; calls `packet` for each packet completed.
    pub fn feed(&mut self, mut data: &[u8], mut packet: impl FnMut(Packet)) {
        while !data.is_empty() {
            match &mut self.state {
                State::Stopped(_) => return,
                State::Length { have, len } => {
                    let Some((&b, rest)) = data.split_first() else {
                        return;
                    };
                    data = rest;
                    if let Some(slot) = have.get_mut(*len) {
                        *slot = b;
                    }
                    *len += 1;
                    if *len == 4 {
                        let total = u32::from_be_bytes(*have);
                        self.state = if total == 0 {
                            State::Stopped(Desync::EmptyPacket)
                        } else if total > MAX_PACKET {
                            State::Stopped(Desync::Oversize(total))
                        } else {
                            State::Packet {
                                total,
                                seen: 0,
                                kept: Vec::new(),
                            }
                        };
                    }
                }
                State::Packet { total, seen, kept } => {
                    let want = (*total - *seen) as usize;
                    let (now, rest) = data.split_at(want.min(data.len()));
                    data = rest;
                    let limit = kept
                        .first()
                        .or(now.first())
                        .map_or(PREFIX_LIMIT, |&k| keep(k));
                    let room = limit.saturating_sub(kept.len());
                    kept.extend_from_slice(now.get(..room.min(now.len())).unwrap_or_default());
                    // `now.len() <= want <= total`, which fits in u32.
                    *seen += u32::try_from(now.len()).unwrap_or(u32::MAX);
                    if *seen >= *total {
                        let mut kept = std::mem::take(kept);
                        let total = *total;
                        self.state = State::Length {
                            have: [0; 4],
                            len: 0,
                        };
                        if kept.is_empty() {
                            continue;
                        }
                        let kind = kept.remove(0);
                        packet(Packet {
                            kind,
                            body: kept,
                            body_len: total - 1,
                        });
                    }
                }
            }
        }
    }
}

/// Reads the fields of a packet body, SSH wire encoding.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `body`.
    pub fn new(body: &'a [u8]) -> Self {
        Self { rest: body }
    }

    /// A `uint32`.
    pub fn u32(&mut self) -> Option<u32> {
        let (head, rest) = self.rest.split_first_chunk::<4>()?;
        self.rest = rest;
        Some(u32::from_be_bytes(*head))
    }

    /// A `uint64`.
    pub fn u64(&mut self) -> Option<u64> {
        let (head, rest) = self.rest.split_first_chunk::<8>()?;
        self.rest = rest;
        Some(u64::from_be_bytes(*head))
    }

    /// A `string` (bytes); `None` if it does not fit in what is left.
    pub fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = self.u32()? as usize;
        if len > self.rest.len() {
            return None;
        }
        let (s, rest) = self.rest.split_at(len);
        self.rest = rest;
        Some(s)
    }

    /// A `string`'s declared length and the part of it present (a string cut short by the
    /// framer's prefix limit).
    pub fn bytes_prefix(&mut self) -> Option<(u32, &'a [u8])> {
        let len = self.u32()?;
        let have = (len as usize).min(self.rest.len());
        let (s, rest) = self.rest.split_at(have);
        self.rest = rest;
        Some((len, s))
    }

    /// A `string` as text (lossy), marked `…` when cut short.
    pub fn path(&mut self) -> Option<String> {
        let (len, s) = self.bytes_prefix()?;
        let mut text = String::from_utf8_lossy(s).into_owned();
        if s.len() < len as usize {
            text.push('…');
        }
        Some(text)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn frame(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut v = (u32::try_from(body.len()).unwrap() + 1)
            .to_be_bytes()
            .to_vec();
        v.push(kind);
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn packets_in_pieces() {
        let mut stream = frame(13, b"abc");
        stream.extend(frame(4, &[]));
        let mut f = Framer::new();
        let mut got = Vec::new();
        for b in &stream {
            f.feed(std::slice::from_ref(b), |p| got.push(p));
        }
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].kind, 13);
        assert_eq!(got[0].body, b"abc");
        assert!(got[0].complete());
        assert_eq!(got[1].kind, 4);
        assert!(got[1].body.is_empty());
    }

    #[test]
    fn long_packets_are_counted_not_kept() {
        let body = vec![7u8; 200_000];
        let mut f = Framer::new();
        let mut got = Vec::new();
        f.feed(&frame(13, &body), |p| got.push(p));
        f.feed(&frame(kind::WRITE, &body), |p| got.push(p));
        for chunk in frame(kind::DATA, &body).chunks(1000) {
            f.feed(chunk, |p| got.push(p));
        }
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].body.len(), PREFIX_LIMIT - 1);
        assert_eq!(got[0].body_len, 200_000);
        assert!(!got[0].complete());
        assert_eq!(got[1].body.len(), WRITE_PREFIX - 1);
        assert_eq!(got[1].body_len, 200_000);
        assert_eq!(got[2].body.len(), DATA_PREFIX - 1);
    }

    #[test]
    fn garbage_stops_the_framer() {
        let mut f = Framer::new();
        f.feed(b"SSH-2.0-OpenSSH\r\n", |_| panic!("no packet"));
        assert_eq!(
            f.stopped(),
            Some(Desync::Oversize(u32::from_be_bytes(*b"SSH-")))
        );
        let mut f = Framer::new();
        f.feed(&[0, 0, 0, 0, 1, 2, 3], |_| panic!("no packet"));
        assert_eq!(f.stopped(), Some(Desync::EmptyPacket));
    }

    #[test]
    fn reader_refuses_short_fields() {
        let mut r = Reader::new(&[0, 0, 0, 5, b'a', b'b']);
        assert_eq!(r.clone().bytes(), None);
        assert_eq!(r.path().as_deref(), Some("ab…"));
        assert_eq!(Reader::new(&[0, 1]).u32(), None);
        assert_eq!(Reader::new(&[0; 7]).u64(), None);
    }

    proptest! {
        /// However the stream is cut, the same packets come out.
        #[test]
        fn chunking_does_not_matter(
            packets in proptest::collection::vec((any::<u8>(), proptest::collection::vec(any::<u8>(), 0..300)), 0..8),
            cuts in proptest::collection::vec(1usize..64, 1..40),
        ) {
            let stream: Vec<u8> = packets.iter().flat_map(|(k, b)| frame(*k, b)).collect();
            let mut whole = Vec::new();
            Framer::new().feed(&stream, |p| whole.push(p));
            let mut pieces = Vec::new();
            let mut f = Framer::new();
            let mut rest = &stream[..];
            let mut i = 0;
            while !rest.is_empty() {
                let n = cuts[i % cuts.len()].min(rest.len());
                let (a, b) = rest.split_at(n);
                f.feed(a, |p| pieces.push(p));
                rest = b;
                i += 1;
            }
            prop_assert_eq!(whole.len(), packets.len());
            prop_assert_eq!(&whole, &pieces);
            for (p, (k, b)) in whole.iter().zip(&packets) {
                prop_assert_eq!(p.kind, *k);
                prop_assert_eq!(&p.body[..], &b[..b.len().min(keep(*k) - 1)]);
                prop_assert_eq!(p.body_len as usize, b.len());
            }
        }

        /// Arbitrary bytes never panic the framer, and it keeps at most the prefix limit.
        #[test]
        fn arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..2000), cut in 1usize..100) {
            let mut f = Framer::new();
            for chunk in data.chunks(cut) {
                f.feed(chunk, |p| assert!(p.body.len() < PREFIX_LIMIT));
            }
        }
    }
}
