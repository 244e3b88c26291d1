use proptest::prelude::*;

use super::*;

/// Builds SFTP packets.
struct P(Vec<u8>);

impl P {
    fn new(kind: u8, id: u32) -> Self {
        let mut v = vec![kind];
        v.extend_from_slice(&id.to_be_bytes());
        P(v)
    }
    fn u32(mut self, x: u32) -> Self {
        self.0.extend_from_slice(&x.to_be_bytes());
        self
    }
    fn u64(mut self, x: u64) -> Self {
        self.0.extend_from_slice(&x.to_be_bytes());
        self
    }
    fn s(mut self, b: &[u8]) -> Self {
        self = self.u32(u32::try_from(b.len()).unwrap());
        self.0.extend_from_slice(b);
        self
    }
    fn wire(self) -> Vec<u8> {
        let mut v = u32::try_from(self.0.len()).unwrap().to_be_bytes().to_vec();
        v.extend(self.0);
        v
    }
}

fn open(id: u32, path: &str, flags: u32) -> Vec<u8> {
    P::new(kind::OPEN, id)
        .s(path.as_bytes())
        .u32(flags)
        .u32(0)
        .wire()
}
fn handle(id: u32, h: &[u8]) -> Vec<u8> {
    P::new(kind::HANDLE, id).s(h).wire()
}
fn status(id: u32, code: u32) -> Vec<u8> {
    P::new(kind::STATUS, id).u32(code).s(b"msg").s(b"en").wire()
}
fn write(id: u32, h: &[u8], off: u64, data: &[u8]) -> Vec<u8> {
    P::new(kind::WRITE, id).s(h).u64(off).s(data).wire()
}
fn close(id: u32, h: &[u8]) -> Vec<u8> {
    P::new(kind::CLOSE, id).s(h).wire()
}

const WCT: u32 = OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE;

#[test]
fn an_upload_is_one_open_and_one_write() {
    let mut t = SftpTracker::new();
    let init = {
        let mut v = 5u32.to_be_bytes().to_vec();
        v.push(kind::INIT);
        v.extend_from_slice(&3u32.to_be_bytes());
        v
    };
    assert!(t.client(&init).is_empty());
    assert!(t.client(&open(1, "/tmp/up.bin", WCT)).is_empty());
    let ops = t.server(&handle(1, b"\0\0\0\x07"));
    assert_eq!(
        ops,
        vec![SftpOp::Open {
            path: "/tmp/up.bin".into(),
            flags: OpenFlags(WCT),
            outcome: Outcome::Ok
        }]
    );
    let chunk = vec![0xabu8; 32 * 1024];
    for i in 0..4u32 {
        assert!(t
            .client(&write(10 + i, b"\0\0\0\x07", u64::from(i) * 32768, &chunk))
            .is_empty());
    }
    assert!(t
        .client(&write(20, b"\0\0\0\x07", 131_072, b"tail"))
        .is_empty());
    let ops = t.client(&close(21, b"\0\0\0\x07"));
    assert_eq!(
        ops,
        vec![SftpOp::Write {
            path: Some("/tmp/up.bin".into()),
            bytes: 4 * 32768 + 4,
            writes: 5
        }]
    );
    assert!(t.finish().is_empty());
}

#[test]
fn failures_and_unanswered_requests_are_reported() {
    let mut t = SftpTracker::new();
    let mut stream = P::new(kind::REMOVE, 1).s(b"/etc/shadow").wire();
    stream.extend(P::new(kind::RENAME, 2).s(b"/tmp/a").s(b"/tmp/b").wire());
    stream.extend(P::new(kind::MKDIR, 3).s(b"/tmp/d").u32(0).wire());
    stream.extend(P::new(kind::RMDIR, 4).s(b"/tmp/e").wire());
    stream.extend(
        P::new(kind::SETSTAT, 5)
            .s(b"/tmp/f")
            .u32(0x4 | 0x2)
            .u32(0)
            .u32(0)
            .u32(0o100_755)
            .wire(),
    );
    stream.extend(
        P::new(kind::EXTENDED, 6)
            .s(b"posix-rename@openssh.com")
            .s(b"/x")
            .s(b"/y")
            .wire(),
    );
    assert!(t.client(&stream).is_empty());
    let mut replies = status(1, 3);
    replies.extend(status(2, 0));
    replies.extend(status(4, 2));
    replies.extend(status(5, 0));
    let ops = t.server(&replies);
    assert_eq!(
        ops,
        vec![
            SftpOp::Remove {
                path: "/etc/shadow".into(),
                outcome: Outcome::Failed(3)
            },
            SftpOp::Rename {
                from: "/tmp/a".into(),
                to: "/tmp/b".into(),
                outcome: Outcome::Ok
            },
            SftpOp::Rmdir {
                path: "/tmp/e".into(),
                outcome: Outcome::Failed(2)
            },
            SftpOp::SetStat {
                path: Some("/tmp/f".into()),
                changes: "uid=0 gid=0 mode=0755".into(),
                outcome: Outcome::Ok
            },
        ]
    );
    assert_eq!(Outcome::Failed(3).as_str(), "permission-denied");
    let end = t.finish();
    assert_eq!(
        end,
        vec![
            SftpOp::Mkdir {
                path: "/tmp/d".into(),
                outcome: Outcome::Unknown
            },
            SftpOp::Rename {
                from: "/x".into(),
                to: "/y".into(),
                outcome: Outcome::Unknown
            },
        ]
    );
}

#[test]
fn writes_to_unseen_handles_and_open_handles_at_the_end() {
    let mut t = SftpTracker::new();
    t.client(&write(1, b"h1", 0, b"12345"));
    t.client(&open(2, "/a", WCT));
    t.server(&handle(2, b"h2"));
    t.client(&write(3, b"h2", 0, b"xy"));
    let mut end = t.finish();
    end.sort_by_key(|op| format!("{op:?}"));
    assert_eq!(
        end,
        vec![
            SftpOp::Write {
                path: None,
                bytes: 5,
                writes: 1
            },
            SftpOp::Write {
                path: Some("/a".into()),
                bytes: 2,
                writes: 1
            },
        ]
    );
}

#[test]
fn fsetstat_names_the_handles_path_and_flags_have_names() {
    let mut t = SftpTracker::new();
    t.client(&open(1, "/b", OpenFlags::READ));
    t.server(&handle(1, b"H"));
    t.client(&P::new(kind::FSETSTAT, 2).s(b"H").u32(0x1).u64(0).wire());
    let ops = t.server(&status(2, 0));
    assert_eq!(
        ops,
        vec![SftpOp::SetStat {
            path: Some("/b".into()),
            changes: "size=0".into(),
            outcome: Outcome::Ok
        }]
    );
    assert_eq!(OpenFlags(WCT).names(), vec!["write", "create", "truncate"]);
    assert!(OpenFlags(WCT).modifies());
    assert!(!OpenFlags(OpenFlags::READ).modifies());
}

#[test]
fn garbage_is_reported_once_and_stops_tracking() {
    let mut t = SftpTracker::new();
    let ops = t.client(b"this is not sftp at all");
    assert!(
        matches!(
            &ops[..],
            [SftpOp::Unparsable {
                stream: "client",
                ..
            }]
        ),
        "{ops:?}"
    );
    assert!(t.client(&open(1, "/a", WCT)).is_empty());
    // A server that stops making sense: what waits is reported, later requests at once.
    let mut t = SftpTracker::new();
    t.client(&open(1, "/a", WCT));
    let ops = t.server(&[0xff; 8]);
    assert_eq!(ops.len(), 2, "{ops:?}");
    let ops = t.client(&P::new(kind::REMOVE, 2).s(b"/r").wire());
    assert_eq!(
        ops,
        vec![SftpOp::Remove {
            path: "/r".into(),
            outcome: Outcome::Unknown
        }]
    );
}

#[test]
fn pending_requests_are_bounded() {
    let mut t = SftpTracker::new();
    let mut immediate = 0;
    for id in 0..(MAX_PENDING as u32 + 10) {
        immediate += t.client(&P::new(kind::REMOVE, id).s(b"/f").wire()).len();
    }
    assert_eq!(immediate, 10);
    assert_eq!(t.finish().len(), MAX_PENDING);
}

#[test]
fn long_paths_are_cut_and_marked() {
    let long = "a".repeat(20_000);
    let mut t = SftpTracker::new();
    t.client(&P::new(kind::REMOVE, 1).s(long.as_bytes()).wire());
    let ops = t.server(&status(1, 0));
    let [SftpOp::Remove { path, .. }] = &ops[..] else {
        panic!("{ops:?}")
    };
    assert!(path.ends_with('…'));
    assert!(path.len() < 9000);
}

/// A whole session's streams.
fn session() -> (Vec<u8>, Vec<u8>) {
    let mut c = open(1, "/up", WCT);
    c.extend(write(2, b"H", 0, &[1; 1000]));
    c.extend(write(3, b"H", 1000, &[2; 500]));
    c.extend(close(4, b"H"));
    c.extend(P::new(kind::REMOVE, 5).s(b"/old").wire());
    let mut s = handle(1, b"H");
    s.extend(status(2, 0));
    s.extend(status(3, 0));
    s.extend(status(4, 0));
    s.extend(status(5, 0));
    (c, s)
}

proptest! {
    /// However both streams are cut (the server's replies after the requests they answer), the
    /// same operations come out.
    #[test]
    fn chunking_does_not_change_the_operations(cut_c in 1usize..50, cut_s in 1usize..50) {
        let (c, s) = session();
        let mut whole = SftpTracker::new();
        let mut expected = whole.client(&c);
        expected.extend(whole.server(&s));
        expected.extend(whole.finish());
        let mut t = SftpTracker::new();
        let mut got = Vec::new();
        for chunk in c.chunks(cut_c) { got.extend(t.client(chunk)); }
        for chunk in s.chunks(cut_s) { got.extend(t.server(chunk)); }
        got.extend(t.finish());
        prop_assert_eq!(got, expected);
    }

    /// Arbitrary bytes on either stream, in any pieces, never panic and keep memory bounded.
    #[test]
    fn arbitrary_streams(
        c in proptest::collection::vec(any::<u8>(), 0..3000),
        s in proptest::collection::vec(any::<u8>(), 0..3000),
        cut in 1usize..200,
    ) {
        let mut t = SftpTracker::new();
        for (a, b) in c.chunks(cut).zip(s.chunks(cut)) {
            let _ = t.client(a);
            let _ = t.server(b);
        }
        prop_assert!(t.pending.len() <= MAX_PENDING);
        prop_assert!(t.handles.len() <= MAX_HANDLES);
        let _ = t.finish();
    }

    /// Valid packets with random fields (ids, paths, handles, garbage bodies) never panic.
    #[test]
    fn random_valid_frames(
        frames in proptest::collection::vec((prop_oneof![Just(3u8), Just(4), Just(6), Just(9), Just(10), Just(13), Just(14), Just(18), Just(20), Just(200), Just(101), Just(102)],
            proptest::collection::vec(any::<u8>(), 0..64)), 0..50),
    ) {
        let mut t = SftpTracker::new();
        for (k, body) in frames {
            let mut p = P(vec![k]);
            p.0.extend(body);
            let w = p.wire();
            let _ = t.client(&w);
            let _ = t.server(&w);
        }
        let _ = t.finish();
    }
}
