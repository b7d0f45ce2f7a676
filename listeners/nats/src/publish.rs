//! The publish pipeline: many messages in flight, acknowledgements taken in
//! order, and (exactly once) every message guarded so that it is stored
//! only directly after this listener's previous message.
//!
//! JetStream checks `Nats-Expected-Last-Subject-Sequence` against the
//! stream sequence of the last message on the subject. That sequence is
//! stream-wide, so the sequence the next message will get is only known
//! from the previous message's acknowledgement: guarding every message
//! with the subject check alone allows one message in flight. To keep many
//! in flight, message `k` is published with a *predicted* sequence: the
//! stream's last sequence known to the listener plus `k`, and carries two
//! checks, `Nats-Expected-Last-Sequence = pred(k-1)` (nothing else was
//! stored in the stream since our previous message) and
//! `Nats-Expected-Last-Subject-Sequence = pred(k-1)` (that message was
//! ours, on our subject). The server stores `k` only if `k-1` was stored
//! exactly at `pred(k-1)`, so what is stored is always an unbroken prefix
//! of what was sent: a rejected message rejects everything after it.
//!
//! When another subject of the stream is written in between, the
//! prediction misses (`wrong last sequence`): the messages in flight are
//! dropped (the server rejects them all) and sent again, and the window
//! halves; at a window of one, a message carries the subject check alone
//! and cannot miss except when another writer wrote on our subject, which
//! is a [`PubError::Conflict`]. The window grows again by one per
//! acknowledged message. A stream written by this listener alone (a stream
//! per host, or a quiet stream) runs at the full window; a busy shared
//! stream degrades towards one round trip per message, never towards a
//! duplicate.

use std::collections::VecDeque;

use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage as Publish;
use async_nats::jetstream::Context;
use logdaemon_sdk::Position;

use crate::message::Outgoing;

const EXPECTED_LAST_SUBJECT_SEQUENCE: &str = "Nats-Expected-Last-Subject-Sequence";
const EXPECTED_LAST_SEQUENCE: &str = "Nats-Expected-Last-Sequence";

/// What the listener knows of its subject in the stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Chain {
    /// Stream sequence of the last message on the subject (0: none).
    pub last_seq: u64,
    /// Where the entry of that message starts (`None`: subject empty).
    pub done: Option<Position>,
    /// Last stream-wide sequence known (from the last acknowledgement or
    /// the stream's info): the base of the predictions.
    pub stream_last: u64,
}

/// Why a batch stopped.
#[derive(Debug)]
pub enum PubError {
    /// A message was refused because the subject's last message is not the
    /// one this listener wrote last, or the stream already held its id:
    /// another writer. `expected` is the subject sequence it was guarded with.
    Conflict { expected: u64, detail: String },
    /// The outcome of some messages is unknown (timeout, connection lost,
    /// leader change): read the subject again before going on.
    Uncertain(String),
    /// Refused for a reason that a retry does not change.
    Refused(String),
}

/// Publishes `msgs` on `subject` in order. Returns how many were
/// acknowledged with the error that stopped the batch, if any; `chain` is
/// updated with every acknowledgement.
pub struct Publisher {
    pub ctx: Context,
    pub stream: String,
    pub subject: String,
    pub max_window: usize,
    pub exactly_once: bool,
    /// Current window (adapts between 1 and `max_window`).
    pub window: usize,
}

impl Publisher {
    pub async fn publish(
        &mut self,
        chain: &mut Chain,
        msgs: &[Outgoing],
    ) -> Result<(), (usize, PubError)> {
        let mut acked = 0;
        let mut next = 0;
        // (index, predicted sequence or 0, ack future)
        let mut inflight = VecDeque::new();
        while acked < msgs.len() {
            while next < msgs.len() && inflight.len() < self.window.max(1) {
                let prev = inflight.back().map(|&(_, p, _)| p);
                if prev == Some(0) && self.exactly_once {
                    break; // behind an unpredicted message: wait for its sequence
                }
                let (publish, pred) = self.guarded(&msgs[next], chain, prev);
                let fut = self
                    .ctx
                    .send_publish(self.subject.clone(), publish)
                    .await
                    .map_err(|e| (acked, PubError::Uncertain(format!("cannot send: {e}"))))?;
                inflight.push_back((next, pred, fut));
                next += 1;
            }
            let (idx, pred, fut) = inflight.pop_front().expect("a message is in flight");
            match fut.await {
                Ok(ack) => {
                    if ack.stream != self.stream {
                        return Err((
                            acked,
                            PubError::Refused(format!(
                                "subject {:?} is stored by stream {:?}, not {:?}",
                                self.subject, ack.stream, self.stream
                            )),
                        ));
                    }
                    if ack.duplicate && self.exactly_once {
                        return Err((
                            acked,
                            PubError::Conflict {
                                expected: chain.last_seq,
                                detail: format!(
                                    "the stream already holds a message with the id of the entry at {} (stream sequence {})",
                                    msgs[idx].start, ack.sequence
                                ),
                            },
                        ));
                    }
                    if self.exactly_once && pred != 0 && ack.sequence != pred {
                        // Cannot happen with the stream check; if it does,
                        // the predictions in flight are wrong: start again.
                        inflight.clear();
                        next = idx + 1;
                        self.window = 1;
                    } else if self.window < self.max_window {
                        self.window += 1;
                    }
                    chain.last_seq = ack.sequence;
                    chain.stream_last = chain.stream_last.max(ack.sequence);
                    chain.done = Some(msgs[idx].start);
                    acked += 1;
                }
                Err(e) if e.kind() == PublishErrorKind::WrongLastSequence && self.exactly_once => {
                    if pred == 0 {
                        // The subject check alone failed: another writer.
                        return Err((
                            acked,
                            PubError::Conflict {
                                expected: chain.last_seq,
                                detail: e.to_string(),
                            },
                        ));
                    }
                    // Another subject was written in between: everything in
                    // flight is refused by the server; send it again.
                    inflight.clear();
                    next = idx;
                    self.window = (self.window / 2).max(1);
                    chain.stream_last = 0;
                }
                Err(e) => {
                    let kind = e.kind();
                    let msg = format!(
                        "no acknowledgement for the entry at {}: {e}",
                        msgs[idx].start
                    );
                    return Err((
                        acked,
                        if kind == PublishErrorKind::StreamNotFound {
                            PubError::Uncertain(format!(
                                "{msg} (no stream answers for subject {:?}: the stream is gone or has no leader right now)",
                                self.subject
                            ))
                        } else {
                            PubError::Uncertain(msg)
                        },
                    ));
                }
            }
        }
        Ok(())
    }

    /// The message with its checks, and the sequence it is predicted to
    /// get (0: not predicted, subject check alone).
    fn guarded(&self, m: &Outgoing, chain: &Chain, prev: Option<u64>) -> (Publish, u64) {
        // (`prev` is never `Some(0)`: an unpredicted message is sent alone.)
        let mut headers = m.headers.clone();
        let mut pred = 0;
        if self.exactly_once {
            match prev {
                // Behind a predicted message: chain off its prediction.
                Some(p) if p != 0 => {
                    headers.insert(EXPECTED_LAST_SEQUENCE, p.to_string().as_str());
                    headers.insert(EXPECTED_LAST_SUBJECT_SEQUENCE, p.to_string().as_str());
                    pred = p + 1;
                }
                _ => {
                    headers.insert(
                        EXPECTED_LAST_SUBJECT_SEQUENCE,
                        chain.last_seq.to_string().as_str(),
                    );
                    if self.window > 1 && chain.stream_last != 0 {
                        headers.insert(
                            EXPECTED_LAST_SEQUENCE,
                            chain.stream_last.to_string().as_str(),
                        );
                        pred = chain.stream_last + 1;
                    }
                }
            }
        }
        (
            Publish::build().payload(m.payload.clone()).headers(headers),
            pred,
        )
    }
}
