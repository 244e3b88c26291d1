//! Feeds arbitrary bytes, cut in arbitrary pieces, to the SFTP audit tracker as both streams of
//! a channel, and to the asciicast writer whose output must always parse back with the same
//! text; and arbitrary text to the asciicast reader. None of them may panic.

#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use sallyport_core::recording::asciicast::{CastWriter, Header};
use sallyport_core::recording::cast_read::{schedule, Cast, Playback};
use sallyport_core::recording::sftp::SftpTracker;

fuzz_target!(|data: &[u8]| {
    let Some((&cut, rest)) = data.split_first() else {
        return;
    };
    let cut = usize::from(cut % 64) + 1;
    let mut tracker = SftpTracker::new();
    let mut writer = CastWriter::new();
    let mut text = Header::new(80, 24, 0).line();
    for (i, piece) in rest.chunks(cut).enumerate() {
        if i % 2 == 0 {
            let _ = tracker.client(piece);
        } else {
            let _ = tracker.server(piece);
        }
        if let Some(line) = writer.output(Duration::from_millis(i as u64), piece) {
            text.push_str(&line);
        }
    }
    let _ = tracker.finish();
    for line in writer.finish(Duration::from_secs(1)) {
        text.push_str(&line);
    }
    let cast = Cast::parse(&text).expect("the writer's output parses");
    assert_eq!(cast.output_text(), String::from_utf8_lossy(rest));
    let _ = schedule(&cast, Playback::default());
    if let Ok(s) = std::str::from_utf8(rest) {
        if let Ok(c) = Cast::parse(s) {
            let _ = schedule(
                &c,
                Playback {
                    speed: 3.0,
                    idle_limit: Some(Duration::from_millis(10)),
                },
            );
        }
    }
});
