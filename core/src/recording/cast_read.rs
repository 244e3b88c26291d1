//! Reading an asciicast v2 recording back, and the playback schedule: when to print each output
//! event at a speed factor, with long pauses capped (asciinema's `--idle-time-limit`).

use std::time::Duration;

use super::asciicast::Header;

/// Longest recording text parsed (the API and CLI hold one recording in memory).
pub const MAX_CAST_BYTES: usize = 256 * 1024 * 1024;

/// Why a recording does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CastError {
    /// No header line.
    #[error("empty recording: no asciicast header")]
    Empty,
    /// The text is larger than [`MAX_CAST_BYTES`].
    #[error("recording too large ({0} bytes)")]
    TooLarge(usize),
    /// The header line is not an asciicast v2 header.
    #[error("line 1: not an asciicast v2 header: {0}")]
    Header(String),
    /// An event line is not `[time, code, data]`.
    #[error("line {line}: not an asciicast event: {why}")]
    Event {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        why: String,
    },
}

/// One event.
#[derive(Clone, Debug, PartialEq)]
pub struct CastEvent {
    /// Time since the start.
    pub time: Duration,
    /// `o`, `i`, `r`, `m` (or another code, kept as is).
    pub code: String,
    /// The data.
    pub data: String,
}

/// A whole recording.
#[derive(Clone, Debug, PartialEq)]
pub struct Cast {
    /// The header.
    pub header: Header,
    /// The events, in file order.
    pub events: Vec<CastEvent>,
}

impl Cast {
    /// Parses asciicast v2 text. Blank lines are skipped; times must be finite and not
    /// negative.
    pub fn parse(text: &str) -> Result<Self, CastError> {
        if text.len() > MAX_CAST_BYTES {
            return Err(CastError::TooLarge(text.len()));
        }
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty());
        let (_, first) = lines.next().ok_or(CastError::Empty)?;
        let header: Header =
            serde_json::from_str(first).map_err(|e| CastError::Header(e.to_string()))?;
        if header.version != 2 {
            return Err(CastError::Header(format!(
                "version {} (only 2 is supported)",
                header.version
            )));
        }
        let mut events = Vec::new();
        for (i, line) in lines {
            events.push(parse_event(line).map_err(|why| CastError::Event { line: i + 1, why })?);
        }
        Ok(Self { header, events })
    }

    /// The output (`o`) text, concatenated.
    pub fn output_text(&self) -> String {
        self.events
            .iter()
            .filter(|e| e.code == "o")
            .map(|e| e.data.as_str())
            .collect()
    }
}

fn parse_event(line: &str) -> Result<CastEvent, String> {
    let (time, code, data): (f64, String, String) =
        serde_json::from_str(line).map_err(|e| e.to_string())?;
    if !time.is_finite() || time < 0.0 {
        return Err(format!("time {time} is not a non-negative number"));
    }
    let time = Duration::try_from_secs_f64(time).map_err(|e| e.to_string())?;
    Ok(CastEvent { time, code, data })
}

/// How to play a recording back.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Playback {
    /// Speed factor: 2.0 plays twice as fast. Must be finite and positive.
    pub speed: f64,
    /// A pause longer than this (in recording time) is shortened to it.
    pub idle_limit: Option<Duration>,
}

impl Default for Playback {
    fn default() -> Self {
        Self {
            speed: 1.0,
            idle_limit: None,
        }
    }
}

/// One step of playback: wait `delay`, then print `data`.
#[derive(Clone, Debug, PartialEq)]
pub struct Frame<'a> {
    /// The wait before printing, after the previous frame.
    pub delay: Duration,
    /// What to print.
    pub data: &'a str,
}

/// The output frames of `cast` with their waits at `playback`'s speed and idle cap. A speed
/// that is not a finite positive number plays at 1x.
pub fn schedule<'a>(cast: &'a Cast, playback: Playback) -> Vec<Frame<'a>> {
    let speed = if playback.speed.is_finite() && playback.speed > 0.0 {
        playback.speed
    } else {
        1.0
    };
    let mut previous = Duration::ZERO;
    let mut frames = Vec::new();
    for e in cast.events.iter().filter(|e| e.code == "o") {
        let mut gap = e.time.saturating_sub(previous);
        previous = previous.max(e.time);
        if let Some(limit) = playback.idle_limit {
            gap = gap.min(limit);
        }
        let delay = Duration::try_from_secs_f64(gap.as_secs_f64() / speed).unwrap_or(Duration::MAX);
        frames.push(Frame {
            delay,
            data: &e.data,
        });
    }
    frames
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::recording::asciicast::CastWriter;

    fn sample() -> String {
        let mut w = CastWriter::new();
        let mut text = Header::new(80, 24, 1).line();
        text.push_str(&w.output(Duration::from_millis(100), b"a").unwrap());
        text.push_str(&w.resize(Duration::from_millis(150), 90, 30));
        text.push_str(&w.output(Duration::from_secs(10), b"b").unwrap());
        text.push_str(&w.input(Duration::from_secs(11), b"x").unwrap());
        text.push_str(&w.output(Duration::from_millis(11_500), b"c").unwrap());
        text
    }

    #[test]
    fn round_trip() {
        let cast = Cast::parse(&sample()).unwrap();
        assert_eq!(cast.header.width, 80);
        assert_eq!(cast.events.len(), 5);
        assert_eq!(cast.events[1].code, "r");
        assert_eq!(cast.events[1].data, "90x30");
        assert_eq!(cast.output_text(), "abc");
    }

    #[test]
    fn schedule_applies_speed_and_idle_cap() {
        let cast = Cast::parse(&sample()).unwrap();
        let plain = schedule(&cast, Playback::default());
        let delays: Vec<_> = plain.iter().map(|f| f.delay.as_millis()).collect();
        assert_eq!(delays, vec![100, 9900, 1500]);
        let fast = schedule(
            &cast,
            Playback {
                speed: 2.0,
                idle_limit: Some(Duration::from_secs(1)),
            },
        );
        let delays: Vec<_> = fast.iter().map(|f| f.delay.as_millis()).collect();
        assert_eq!(delays, vec![50, 500, 500]);
        let data: Vec<_> = fast.iter().map(|f| f.data).collect();
        assert_eq!(data, vec!["a", "b", "c"]);
        let odd = schedule(
            &cast,
            Playback {
                speed: f64::NAN,
                idle_limit: None,
            },
        );
        assert_eq!(odd[0].delay, Duration::from_millis(100));
    }

    #[test]
    fn bad_recordings_are_named() {
        assert_eq!(Cast::parse(""), Err(CastError::Empty));
        assert!(matches!(
            Cast::parse("{\"version\":1,\"width\":1,\"height\":1}"),
            Err(CastError::Header(_))
        ));
        let e = Cast::parse("{\"version\":2,\"width\":1,\"height\":1}\n[1, \"o\"]\n").unwrap_err();
        assert!(matches!(e, CastError::Event { line: 2, .. }), "{e}");
        let e = Cast::parse("{\"version\":2,\"width\":1,\"height\":1}\n[-1, \"o\", \"x\"]\n")
            .unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
    }

    proptest! {
        /// Whatever bytes are written in whatever pieces, the recording parses back, its times
        /// never go backwards, and the output is the lossy decoding of all the bytes.
        #[test]
        fn writer_output_always_parses(
            pieces in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..30),
            steps in proptest::collection::vec(0u64..5_000_000, 30),
        ) {
            let mut w = CastWriter::new();
            let mut text = Header::new(80, 24, 0).line();
            let mut at = Duration::ZERO;
            let mut all = Vec::new();
            for (p, step) in pieces.iter().zip(steps.iter()) {
                at += Duration::from_micros(*step);
                all.extend_from_slice(p);
                if let Some(l) = w.output(at, p) { text.push_str(&l); }
            }
            for l in w.finish(at) { text.push_str(&l); }
            let cast = Cast::parse(&text).unwrap();
            let mut prev = Duration::ZERO;
            for e in &cast.events {
                prop_assert!(e.time >= prev);
                prev = e.time;
            }
            prop_assert_eq!(cast.output_text(), String::from_utf8_lossy(&all).into_owned());
        }

        /// Arbitrary text never panics the reader.
        #[test]
        fn reader_never_panics(text in ".{0,400}") {
            let _ = Cast::parse(&text);
        }
    }
}
