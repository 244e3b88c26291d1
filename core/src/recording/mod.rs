//! Session recording and SFTP audit, without I/O: bytes seen on a proxied channel in, asciicast
//! lines and audit operations out.
//!
//! ```text
//!  target output ─▶ CastWriter ─▶ asciicast v2 lines ─▶ (gateway: sealed chunks in the store)
//!  store chunks ─(gateway: opened)─▶ Cast::parse ─▶ playback::schedule ─▶ CLI `session play`
//!
//!  client bytes ─┐
//!                ├─▶ SftpTracker (two Framers: length-prefixed packets, bounded) ─▶ SftpOp
//!  target bytes ─┘       open / write (per handle) / remove / rename / mkdir / rmdir / setstat
//! ```
//!
//! # Layout
//!
//! - [`asciicast`]: the asciicast v2 writer ([`asciicast::CastWriter`]: header, `o`/`i`/`r`/`m`
//!   events, times relative to the start, UTF-8 split across chunks carried over).
//! - [`cast_read`]: the reader ([`cast_read::Cast::parse`]) and the playback schedule (speed
//!   factor, idle cap).
//! - [`sftp_wire`]: SFTP v3 framing ([`sftp_wire::Framer`]) and packet fields.
//! - [`sftp`]: [`sftp::SftpTracker`], requests matched with replies into [`sftp::SftpOp`]s.

pub mod asciicast;
pub mod cast_read;
pub mod sftp;
pub mod sftp_wire;
