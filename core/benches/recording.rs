//! Throughput of what the proxy relay feeds per byte: the SFTP audit tracker over an upload
//! (32 KiB `WRITE`s, fed in 16 KiB pieces as SSH channel data arrives), and the asciicast writer
//! over terminal output (4 KiB pieces, with escapes and multi-byte characters).
//!
//! ```text
//! cargo bench -p sallyport-core --bench recording -- --warm-up-time 1 --measurement-time 3
//! ```

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sallyport_core::recording::asciicast::CastWriter;
use sallyport_core::recording::sftp::SftpTracker;

const TOTAL: usize = 8 * 1024 * 1024;

fn sftp_upload() -> (Vec<u8>, Vec<u8>) {
    let mut client = Vec::new();
    let mut server = Vec::new();
    let packet = |kind: u8, body: &[u8]| {
        let mut v = (u32::try_from(body.len()).unwrap() + 1)
            .to_be_bytes()
            .to_vec();
        v.push(kind);
        v.extend_from_slice(body);
        v
    };
    let string = |s: &[u8]| {
        let mut v = u32::try_from(s.len()).unwrap().to_be_bytes().to_vec();
        v.extend_from_slice(s);
        v
    };
    let mut open = 1u32.to_be_bytes().to_vec();
    open.extend(string(b"/srv/upload.bin"));
    open.extend(0x1au32.to_be_bytes());
    open.extend(0u32.to_be_bytes());
    client.extend(packet(3, &open));
    let mut handle = 1u32.to_be_bytes().to_vec();
    handle.extend(string(b"\0\0\0\x01"));
    server.extend(packet(102, &handle));
    let data = vec![0x5au8; 32 * 1024];
    for i in 0..(TOTAL / data.len()) {
        let id = u32::try_from(i + 2).unwrap();
        let mut w = id.to_be_bytes().to_vec();
        w.extend(string(b"\0\0\0\x01"));
        w.extend((u64::try_from(i).unwrap() * 32768).to_be_bytes());
        w.extend(string(&data));
        client.extend(packet(6, &w));
    }
    (client, server)
}

fn terminal_output() -> Vec<u8> {
    let line = "\x1b[1;32muser@db-1\x1b[0m:~$ ls -la /var/log  données ✓ ok\r\n";
    line.repeat(TOTAL / line.len()).into_bytes()
}

fn bench(c: &mut Criterion) {
    let (client, server) = sftp_upload();
    let mut g = c.benchmark_group("recording");
    g.throughput(Throughput::Bytes(client.len() as u64));
    g.bench_function("sftp_tracker_upload", |b| {
        b.iter(|| {
            let mut t = SftpTracker::new();
            let mut n = t.server(&server).len();
            for piece in client.chunks(16 * 1024) {
                n += t.client(black_box(piece)).len();
            }
            n += t.finish().len();
            assert_eq!(n, 2);
        });
    });
    let out = terminal_output();
    g.throughput(Throughput::Bytes(out.len() as u64));
    g.bench_function("asciicast_writer_output", |b| {
        b.iter(|| {
            let mut w = CastWriter::new();
            let mut bytes = 0usize;
            for (i, piece) in out.chunks(4096).enumerate() {
                if let Some(l) = w.output(Duration::from_millis(i as u64), black_box(piece)) {
                    bytes += l.len();
                }
            }
            black_box(bytes)
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
