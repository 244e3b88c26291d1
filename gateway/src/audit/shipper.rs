//! One shipper per sink: follows this gateway's own hash chain (and the shared chain's
//! remaining records) after the sink's checkpoint in each, cuts batches with
//! `core::audit::batch`, sends them one at a time, and moves that chain's checkpoint after each
//! batch the sink accepted.
//!
//! Chains (docs/ha.md, "Audit journal with several gateways"): a gateway with an instance name
//! ships its own chain to its own sink (one CloudWatch stream per gateway), plus the shared
//! chain (records from before per-instance chains; closed for gateways with an instance, so its
//! backlog is finite), each from its own checkpoint (`sink_checkpoints` per (sink, chain)) and
//! in its own order (`Store::chain_after`; on PostgreSQL journal positions can commit out of
//! order across chains, a chain's seqs cannot). A store without an instance (tests, tools)
//! ships the shared chain only. Other gateways' chains are theirs to ship.
//!
//! ```text
//!  loop: every flush interval (or at once when a full batch of the own chain is waiting)
//!   for each chain (shared, then own):
//!    records after its checkpoint (a page) ─▶ flat JSON ─▶ plan(now, limits)
//!      quarantined ─▶ sink_quarantine + audit.ship.quarantined   (one transaction)
//!      each batch ─▶ deliver ─┬─ ok ─▶ rejected? ─▶ sink_quarantine + audit.ship.rejected
//!                             │        ─▶ the chain's checkpoint = batch.ack_seq
//!                             ├─ retryable ─▶ backoff (jitter), same batch again
//!                             ├─ missing   ─▶ prepare (create the stream), again
//!                             └─ refused   ─▶ split in halves; a single event refused is
//!                                             reported as rejected (`invalid`), never resent
//!  shutdown: ship what is pending for up to `drain`, then stop; the checkpoints keep the place
//! ```
//!
//! A crash between a delivery and its checkpoint sends that batch again after the restart
//! (at-least-once, per chain): the copies have the same `id`, `chain` and `seq`.

use std::time::Duration;

use sallyport_core::audit::batch::{self, Entry, LogEvent};
use sallyport_core::audit::flat::flat_message;
use sallyport_core::audit::{Event, EventKind, SYSTEM_ACTOR};
use sallyport_core::time::Timestamp;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{Backoff, RejectReason, Sink, SinkError};
use crate::store::{QuarantineEntry, Store};

/// How a shipper runs.
#[derive(Debug, Clone)]
pub struct ShipperOptions {
    /// This gateway's name (the `instance` field of every shipped event).
    pub instance: String,
    /// How long events may wait to fill a batch.
    pub flush: Duration,
    /// Records read from the journal at a time.
    pub page: usize,
    /// How long shutdown waits for pending events to ship.
    pub drain: Duration,
    /// Retry waits.
    pub backoff: Backoff,
}

impl ShipperOptions {
    /// One-second flush, pages of 10,000, five seconds to drain.
    pub fn new(instance: impl Into<String>) -> Self {
        Self {
            instance: instance.into(),
            flush: Duration::from_secs(1),
            page: 10_000,
            drain: Duration::from_secs(5),
            backoff: Backoff::default(),
        }
    }
}

/// Shipping stopped before the work was done (shutdown past the drain deadline).
#[derive(Debug)]
struct Stopped;

/// Where the sink is in one chain.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cursor {
    /// The chain: a gateway instance, `None` for the shared chain.
    chain: Option<String>,
    /// The sink's checkpoint in it.
    ack: u64,
    /// Whether the (sink, chain) checkpoint row exists (created before the first delivery, so
    /// a gateway whose shared chain is empty lists no row for it).
    opened: bool,
}

/// Ships the store's own chain (and the shared chain) to one sink.
#[derive(Debug)]
pub struct Shipper<S> {
    store: Store,
    sink: S,
    opts: ShipperOptions,
    shutdown: watch::Receiver<bool>,
    stop_at: Option<Instant>,
    prepared: bool,
    /// The chains followed: the shared chain, then the store's own (one entry when they are
    /// the same: a store without an instance).
    cursors: Vec<Cursor>,
}

/// Starts a shipper task for `sink`; it drains and ends when `shutdown` turns true.
pub fn spawn_shipper<S: Sink>(
    store: Store,
    sink: S,
    opts: ShipperOptions,
    shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let name = sink.name().to_owned();
    tokio::spawn(async move {
        let shipper = Shipper {
            store,
            sink,
            opts,
            shutdown,
            stop_at: None,
            prepared: false,
            cursors: Vec::new(),
        };
        shipper.run().await;
        tracing::info!(sink = %name, "audit shipper stopped");
    })
}

impl<S: Sink> Shipper<S> {
    async fn run(mut self) {
        let name = self.sink.name().to_owned();
        let mut head = self.store.watch_head();
        let own = self.store.instance().map(str::to_owned);
        let mut chains = vec![None];
        if own.is_some() {
            chains.push(own.clone());
        }
        for chain in chains {
            // The own chain's row is created at once (its backlog is visible from the start);
            // the shared chain's is read, and created when there is something to ship.
            let is_own = chain == own;
            loop {
                let opened = if is_own {
                    self.store.open_sink(&name, chain.as_deref()).await
                } else {
                    self.store.sink_checkpoint(&name, chain.as_deref()).await
                };
                match opened {
                    Ok(ack) => {
                        self.cursors.push(Cursor {
                            chain: chain.clone(),
                            ack,
                            opened: is_own,
                        });
                        break;
                    }
                    Err(e) => {
                        tracing::error!(sink = %name, chain = chain.as_deref().unwrap_or(""), cause = %e, "cannot read the sink's checkpoint");
                        let wait = self.opts.backoff.next_wait();
                        if self.wait(wait).await.is_err() {
                            return;
                        }
                    }
                }
            }
        }
        tracing::info!(sink = %name, chains = ?self.cursors, "audit shipper started");
        let full = self.sink.limits().max_events as u64;
        loop {
            if self.ship_pending().await.is_err() {
                return;
            }
            if self.stop_at.is_some() {
                return;
            }
            let tick = tokio::time::sleep(self.opts.flush);
            tokio::pin!(tick);
            loop {
                tokio::select! {
                    _ = &mut tick => break,
                    changed = head.changed() => {
                        if changed.is_err() {
                            (&mut tick).await;
                            break;
                        }
                        if *head.borrow_and_update() >= self.own_ack().saturating_add(full) {
                            break;
                        }
                    }
                    () = stopping(&mut self.shutdown) => {
                        self.stop_at = Some(Instant::now() + self.opts.drain);
                        break;
                    }
                }
            }
        }
    }

    /// The checkpoint in the store's own chain (the one [`Store::watch_head`] follows).
    fn own_ack(&self) -> u64 {
        self.cursors.last().map_or(0, |c| c.ack)
    }

    /// Ships everything after the checkpoints, chain by chain.
    async fn ship_pending(&mut self) -> Result<(), Stopped> {
        let mut cursors = std::mem::take(&mut self.cursors);
        let mut result = Ok(());
        for cursor in &mut cursors {
            result = self.ship_chain(cursor).await;
            if result.is_err() {
                break;
            }
        }
        self.cursors = cursors;
        result
    }

    /// Ships everything of one chain after its checkpoint, page by page.
    async fn ship_chain(&mut self, cursor: &mut Cursor) -> Result<(), Stopped> {
        let name = self.sink.name().to_owned();
        let label = cursor.chain.clone().unwrap_or_default();
        loop {
            let records = match self
                .store
                .chain_after(cursor.chain.as_deref(), cursor.ack, self.opts.page)
                .await
            {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(sink = %name, chain = %label, cause = %e, "cannot read the journal");
                    let wait = self.opts.backoff.next_wait();
                    self.wait(wait).await?;
                    continue;
                }
            };
            let Some(last) = records.last() else {
                return Ok(());
            };
            if !cursor.opened {
                match self.store.open_sink(&name, cursor.chain.as_deref()).await {
                    Ok(ack) => {
                        cursor.opened = true;
                        if ack != cursor.ack {
                            // Moved meanwhile (another process with this sink's name): read
                            // again from there.
                            cursor.ack = cursor.ack.max(ack);
                            continue;
                        }
                    }
                    Err(e) => {
                        tracing::error!(sink = %name, chain = %label, cause = %e, "cannot create the sink's checkpoint");
                        let wait = self.opts.backoff.next_wait();
                        self.wait(wait).await?;
                        continue;
                    }
                }
            }
            let (count, last_seq) = (records.len(), last.0.seq);
            // Each event is labelled with the gateway that journaled it (for the shared chain,
            // possibly another gateway); records from before instance names with the shipping
            // gateway.
            let entries: Vec<Entry> = records
                .iter()
                .map(|(r, origin)| Entry {
                    seq: r.seq,
                    time: r.time,
                    message: flat_message(r, origin.as_deref().unwrap_or(&self.opts.instance)),
                })
                .collect();
            drop(records);
            let plan = batch::plan(entries, Timestamp::now(), &self.sink.limits());
            if !plan.split.is_empty() {
                tracing::warn!(sink = %name, chain = %label, seqs = ?plan.split, "oversize audit events shipped in parts");
            }
            if !plan.quarantined.is_empty() {
                let entries: Vec<QuarantineEntry> = plan
                    .quarantined
                    .iter()
                    .map(|q| QuarantineEntry {
                        seq: q.seq,
                        reason: q.reason.as_str().to_owned(),
                    })
                    .collect();
                self.report(cursor.chain.as_deref(), &entries, false)
                    .await?;
            }
            for b in &plan.batches {
                let delivered = if b.events.is_empty() {
                    0
                } else {
                    self.send(cursor.chain.as_deref(), &b.events).await?
                };
                self.persist(cursor, b.ack_seq, delivered).await?;
            }
            if cursor.ack < last_seq {
                tracing::error!(sink = %name, chain = %label, checkpoint = cursor.ack, last_seq, "a plan left records unacknowledged");
            }
            if count < self.opts.page {
                return Ok(());
            }
        }
    }

    /// Moves the chain's checkpoint, retrying the store until it takes it.
    async fn persist(
        &mut self,
        cursor: &mut Cursor,
        seq: u64,
        delivered: u64,
    ) -> Result<(), Stopped> {
        let name = self.sink.name().to_owned();
        loop {
            match self
                .store
                .advance_sink(&name, cursor.chain.as_deref(), seq, delivered)
                .await
            {
                Ok(()) => {
                    cursor.ack = cursor.ack.max(seq);
                    return Ok(());
                }
                Err(e) => {
                    tracing::error!(sink = %name, cause = %e, "cannot store the checkpoint");
                    let wait = self.opts.backoff.next_wait();
                    self.wait(wait).await?;
                }
            }
        }
    }

    /// Sends one batch of `chain` until the sink takes it; returns how many events it stored.
    async fn send(&mut self, chain: Option<&str>, events: &[LogEvent]) -> Result<u64, Stopped> {
        let name = self.sink.name().to_owned();
        // Ranges still to send; a refused range is split in halves, left half first.
        let mut work = vec![(0usize, events.len())];
        let mut rejected: Vec<(u64, RejectReason)> = Vec::new();
        let mut invalid: Vec<u64> = Vec::new();
        let mut stored = 0u64;
        while let Some((from, to)) = work.pop() {
            let Some(part) = events.get(from..to) else {
                continue;
            };
            loop {
                if !self.prepared {
                    if let Err(e) = self.sink.prepare().await {
                        self.failed(chain, &e).await?;
                        continue;
                    }
                    self.prepared = true;
                }
                match self.sink.deliver(part).await {
                    Ok(d) => {
                        self.opts.backoff.reset();
                        for (i, why) in &d.rejected {
                            if let Some(e) = part.get(*i) {
                                rejected.push((e.seq, *why));
                            }
                        }
                        stored += (part.len() - d.rejected.len().min(part.len())) as u64;
                        break;
                    }
                    Err(SinkError::Refused(cause)) if part.len() > 1 => {
                        tracing::warn!(sink = %name, events = part.len(), cause = %cause, "batch refused; splitting it to find the refused events");
                        let mid = from + part.len() / 2;
                        work.push((mid, to));
                        work.push((from, mid));
                        break;
                    }
                    Err(SinkError::Refused(cause)) => {
                        tracing::error!(sink = %name, chain = chain.unwrap_or(""), seq = part.first().map(|e| e.seq), cause = %cause, "event refused by the sink; it stays in the journal");
                        invalid.extend(part.iter().map(|e| e.seq));
                        break;
                    }
                    Err(e @ SinkError::Missing(_)) => {
                        self.prepared = false;
                        self.failed(chain, &e).await?;
                    }
                    Err(e @ SinkError::Retryable(_)) => self.failed(chain, &e).await?,
                }
            }
        }
        let mut entries: Vec<QuarantineEntry> = rejected
            .iter()
            .map(|(seq, why)| QuarantineEntry {
                seq: *seq,
                reason: why.as_str().to_owned(),
            })
            .collect();
        entries.extend(invalid.iter().map(|seq| QuarantineEntry {
            seq: *seq,
            reason: "invalid".to_owned(),
        }));
        if !entries.is_empty() {
            self.report(chain, &entries, true).await?;
        }
        Ok(stored)
    }

    /// Notes a failed attempt (shipping `chain`) and waits before the next.
    async fn failed(&mut self, chain: Option<&str>, e: &SinkError) -> Result<(), Stopped> {
        let name = self.sink.name().to_owned();
        let wait = self.opts.backoff.next_wait();
        tracing::warn!(sink = %name, chain = chain.unwrap_or(""), cause = %e, attempt = self.opts.backoff.attempts(), retry_in = ?wait, "audit delivery failed");
        if let Err(store_error) = self.store.sink_error(&name, chain, &e.to_string()).await {
            tracing::error!(sink = %name, cause = %store_error, "cannot note the delivery error");
        }
        self.wait(wait).await
    }

    /// Records undelivered events of `chain` (quarantine list, counter, one audit event per
    /// reason naming the chain and its seqs; journaled in the store's own chain).
    async fn report(
        &mut self,
        chain: Option<&str>,
        entries: &[QuarantineEntry],
        rejected: bool,
    ) -> Result<(), Stopped> {
        let name = self.sink.name().to_owned();
        let mut reasons: Vec<&str> = entries.iter().map(|e| e.reason.as_str()).collect();
        reasons.sort_unstable();
        reasons.dedup();
        let events: Vec<Event> = reasons
            .iter()
            .map(|reason| {
                let seqs: Vec<u64> = entries
                    .iter()
                    .filter(|e| e.reason == *reason)
                    .map(|e| e.seq)
                    .collect();
                let (count, first_seq, last_seq) = (
                    seqs.len() as u64,
                    seqs.iter().copied().min().unwrap_or(0),
                    seqs.iter().copied().max().unwrap_or(0),
                );
                let (sink, reason) = (name.clone(), (*reason).to_owned());
                let chain = chain.map(str::to_owned);
                let kind = if rejected {
                    EventKind::ShipRejected {
                        sink,
                        chain,
                        reason,
                        count,
                        first_seq,
                        last_seq,
                    }
                } else {
                    EventKind::ShipQuarantined {
                        sink,
                        chain,
                        reason,
                        count,
                        first_seq,
                        last_seq,
                    }
                };
                Event::new(Timestamp::now(), SYSTEM_ACTOR, kind)
            })
            .collect();
        let what = if rejected { "rejected" } else { "quarantined" };
        tracing::warn!(sink = %name, chain = chain.unwrap_or(""), events = entries.len(), what, "audit events not delivered; they stay in the journal");
        loop {
            match self
                .store
                .quarantine(&name, chain, entries, rejected, &events)
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) => {
                    tracing::error!(sink = %name, cause = %e, "cannot record undelivered events");
                    let wait = self.opts.backoff.next_wait();
                    self.wait(wait).await?;
                }
            }
        }
    }

    /// Sleeps `d`; on shutdown, keeps going until the drain deadline, then stops.
    async fn wait(&mut self, d: Duration) -> Result<(), Stopped> {
        let until = Instant::now() + d;
        if self.stop_at.is_none() {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => return Ok(()),
                () = stopping(&mut self.shutdown) => {
                    self.stop_at = Some(Instant::now() + self.opts.drain);
                }
            }
        }
        match self.stop_at {
            Some(stop) if until >= stop => Err(Stopped),
            _ => {
                tokio::time::sleep_until(until).await;
                Ok(())
            }
        }
    }
}

/// Resolves when shutdown is asked for (or its sender is gone).
async fn stopping(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}
