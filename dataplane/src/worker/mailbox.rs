//! The mailboxes between a daemon's threads: packets a worker hands to the owner
//! of their NAT session, session queries from the control thread, and the
//! wake-up of a worker that sleeps. The pipeline never touches them: it leaves
//! handoffs in its output, and the worker posts them here.

use crate::ids::{Lane, MasqIdx};
use crate::io::wake::{self, WakeFd, Waker};
use crate::nat::SessionInfo;
use crate::pipeline::{Handoff, Pipeline, HANDOFF_QUEUE};
#[cfg(doc)]
use crate::stats::DropReason;
use crossbeam_channel::{bounded, Receiver, Sender};
use std::io;
use std::time::Duration;

/// Handed-off packets a worker takes per batch.
const HANDOFF_BATCH: usize = 256;
/// Session queries that may wait for one worker.
const QUERY_QUEUE: usize = 4;

/// A request for the NAT sessions of one worker.
#[derive(Debug)]
struct SessionQuery {
    /// Most sessions to return.
    limit: usize,
    /// Where the worker sends them.
    reply: Sender<Vec<(MasqIdx, SessionInfo)>>,
}

/// One worker's mailbox.
#[derive(Debug)]
struct Mailbox {
    handoff: (Sender<Handoff>, Receiver<Handoff>),
    queries: (Sender<SessionQuery>, Receiver<SessionQuery>),
    waker: Waker,
}

/// The mailboxes of every worker of a daemon, by lane.
#[derive(Debug)]
pub struct Mailboxes {
    boxes: Vec<Mailbox>,
}

impl Mailboxes {
    /// Mailboxes for `workers` workers, and the receiving end of each one's
    /// wake-ups (for its ports' `wait`).
    pub fn new(workers: usize) -> io::Result<(Mailboxes, Vec<WakeFd>)> {
        let mut boxes = Vec::new();
        let mut fds = Vec::new();
        for _ in 0..workers.max(1) {
            let (waker, fd) = wake::pair()?;
            boxes.push(Mailbox {
                handoff: bounded(HANDOFF_QUEUE),
                queries: bounded(QUERY_QUEUE),
                waker,
            });
            fds.push(fd);
        }
        Ok((Mailboxes { boxes }, fds))
    }

    /// Posts the packets `pipeline` handed off to their owners and wakes them; a
    /// packet whose owner's queue is full is dropped as [`DropReason::HandoffFull`].
    pub fn post(&self, pipeline: &mut Pipeline) {
        pipeline.post_handoffs(|lane, h| {
            let Some(b) = self.boxes.get(lane.index()) else {
                return false;
            };
            if b.handoff.0.try_send(h).is_err() {
                return false;
            }
            b.waker.wake();
            true
        });
    }

    /// Serves the mailbox of `pipeline`'s worker: resumes packets handed to it and
    /// answers session queries. Returns how many it handled.
    pub fn serve(&self, pipeline: &mut Pipeline) -> usize {
        let Some(b) = self.boxes.get(pipeline.lane().index()) else {
            return 0;
        };
        let mut n = 0;
        for h in b.handoff.1.try_iter().take(HANDOFF_BATCH) {
            pipeline.resume(h);
            n += 1;
        }
        for q in b.queries.1.try_iter() {
            let _ = q.reply.try_send(pipeline.nat_sessions(q.limit));
            n += 1;
        }
        n
    }

    /// True when the mailbox of `lane` holds something.
    pub fn has_mail(&self, lane: Lane) -> bool {
        self.boxes
            .get(lane.index())
            .is_some_and(|b| !b.handoff.1.is_empty() || !b.queries.1.is_empty())
    }

    /// The waker of `lane` (its worker announces its sleep through it).
    pub fn waker(&self, lane: Lane) -> Option<&Waker> {
        self.boxes.get(lane.index()).map(|b| &b.waker)
    }

    /// Up to `limit` NAT sessions of each worker, asked of the running workers
    /// (each answers at its next batch; a worker silent for `timeout` is skipped).
    pub fn nat_sessions(&self, limit: usize, timeout: Duration) -> Vec<(MasqIdx, SessionInfo)> {
        let mut all = Vec::new();
        for b in &self.boxes {
            let (reply, answer) = bounded(1);
            if b.queries.0.try_send(SessionQuery { limit, reply }).is_ok() {
                b.waker.wake();
                if let Ok(mut sessions) = answer.recv_timeout(timeout) {
                    all.append(&mut sessions);
                }
            }
        }
        all
    }
}
