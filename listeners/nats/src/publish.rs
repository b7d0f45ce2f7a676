//! The publish pipeline: many messages in flight, acknowledgements taken in
//! order, and (exactly once) every message guarded so that it is stored
//! only directly after this listener's previous message.
//!
//! JetStream's `Nats-Expected-Last-Subject-Sequence` names the stream
//! sequence of the subject's last message. That sequence is stream-wide,
//! so for the next message it is only known from the previous message's
//! acknowledgement: guarding every message with it allows one message in
//! flight. So only the first message sent with nothing in flight carries
//! it (with the sequence of the subject's last message, known for sure);
//! every message sent behind another carries `Nats-Expected-Last-Msg-Id`
//! with the id of the message just before it: the server stores it only if
//! the stream's last message is that one. Ids name host, journal, writer
//! (one per state directory, [`crate::writer`]) and position, so what is
//! stored is always an unbroken prefix of what was sent: a refused message
//! makes every message behind it refused too, and nothing can be stored
//! after another writer's message, even one at the same journal position.
//!
//! When anything else is stored in the stream in between (another
//! subject's writer), a message behind another is refused (`wrong last msg
//! ID`): the messages in flight are dropped (the server refuses them all)
//! and sent again, starting with a subject-guarded one, and the window
//! halves; it grows again by one per acknowledged message. A refused
//! subject-guarded message means that another writer wrote on our subject:
//! a [`PubError::Conflict`]. A stream written by this listener alone (one
//! stream per host, or a quiet stream) runs at the full window; a busy
//! shared stream degrades towards one round trip per message, never
//! towards a duplicate.

use std::collections::VecDeque;

use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::Context;
use logdaemon_sdk::Position;

use crate::message::Outgoing;

const EXPECTED_LAST_SUBJECT_SEQUENCE: &str = "Nats-Expected-Last-Subject-Sequence";
const EXPECTED_LAST_MSG_ID: &str = "Nats-Expected-Last-Msg-Id";

/// What the listener knows of its subject in the stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Chain {
    /// Stream sequence of the last message on the subject (0: none).
    pub last_seq: u64,
    /// Where the entry of that message starts (`None`: subject empty).
    pub done: Option<Position>,
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

/// Publishes batches on one subject.
pub struct Publisher {
    pub ctx: Context,
    pub stream: String,
    pub subject: String,
    pub max_window: usize,
    pub exactly_once: bool,
    /// Current window (adapts between 1 and `max_window`).
    pub window: usize,
    /// Messages refused because something else was stored in between,
    /// since the listener last reported them.
    pub misses: u64,
}

impl Publisher {
    /// Publishes `n` messages in order, built by `make(i)` when sent
    /// (again after a miss). On error, returns how many were acknowledged;
    /// `chain` follows every acknowledgement.
    pub async fn publish(
        &mut self,
        chain: &mut Chain,
        n: usize,
        make: &mut dyn FnMut(usize) -> Outgoing,
    ) -> Result<(), (usize, PubError)> {
        let mut acked = 0;
        let mut next = 0;
        // (index, start, guarded by the subject sequence, ack future)
        let mut inflight = VecDeque::new();
        // The id of the last message sent, while messages are in flight.
        let mut behind: Option<String> = None;
        while acked < n {
            while next < n && inflight.len() < self.window.max(1) {
                let m = make(next);
                let (start, id) = (m.start, m.id.clone());
                let by_subject = inflight.is_empty();
                let publish = self.guarded(m, chain, behind.as_deref().filter(|_| !by_subject));
                let fut = self
                    .ctx
                    .send_publish(self.subject.clone(), publish)
                    .await
                    .map_err(|e| (acked, PubError::Uncertain(format!("cannot send: {e}"))))?;
                inflight.push_back((next, start, by_subject, fut));
                behind = Some(id);
                next += 1;
            }
            let (idx, start, by_subject, fut) =
                inflight.pop_front().expect("a message is in flight");
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
                                    "the stream already holds a message with the id of this entry (stream sequence {})",
                                    ack.sequence
                                ),
                            },
                        ));
                    }
                    if self.window < self.max_window {
                        self.window += 1;
                    }
                    chain.last_seq = ack.sequence;
                    chain.done = Some(start);
                    acked += 1;
                }
                Err(e)
                    if self.exactly_once
                        && by_subject
                        && e.kind() == PublishErrorKind::WrongLastSequence =>
                {
                    return Err((
                        acked,
                        PubError::Conflict {
                            expected: chain.last_seq,
                            detail: e.to_string(),
                        },
                    ));
                }
                Err(e)
                    if self.exactly_once
                        && !by_subject
                        && e.kind() == PublishErrorKind::WrongLastMessageId =>
                {
                    // Something else was stored in between: everything in
                    // flight is refused by the server; send it again.
                    inflight.clear();
                    next = idx;
                    self.window = (self.window / 2).max(1);
                    self.misses += 1;
                }
                Err(e) => {
                    let msg = format!("no acknowledgement for the entry at {start}: {e}");
                    return Err((
                        acked,
                        PubError::Uncertain(if e.kind() == PublishErrorKind::StreamNotFound {
                            format!(
                                "{msg} (no stream answers for subject {:?}: the stream is gone or has no leader right now)",
                                self.subject
                            )
                        } else {
                            msg
                        }),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The message with its check: behind the message with id `behind`
    /// (in flight), the stream's last message must be it; with nothing in
    /// flight, the subject's last message must be the chain's.
    fn guarded(&self, m: Outgoing, chain: &Chain, behind: Option<&str>) -> PublishMessage {
        let mut headers = m.headers;
        if self.exactly_once {
            match behind {
                Some(id) => headers.insert(EXPECTED_LAST_MSG_ID, id),
                None => headers.insert(
                    EXPECTED_LAST_SUBJECT_SEQUENCE,
                    chain.last_seq.to_string().as_str(),
                ),
            }
        }
        PublishMessage::build().payload(m.payload).headers(headers)
    }
}
