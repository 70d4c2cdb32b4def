//! A delay line: copies of the frames one thread received for one direction, each with the time
//! it is due to leave, in arrival order. Frames never overtake each other: a frame due earlier
//! than the one ahead of it leaves with that one.

use std::collections::VecDeque;

/// Spare buffers kept for reuse after a burst (each holds one frame).
const SPARE_MAX: usize = 4096;

/// A frame waiting to leave.
#[derive(Debug)]
struct Held {
    due: u64,
    frame: Vec<u8>,
}

/// Frames in flight.
#[derive(Debug)]
pub struct DelayLine {
    held: VecDeque<Held>,
    spare: Vec<Vec<u8>>,
    /// The due time of the last frame taken in.
    last_due: u64,
    limit: usize,
}

impl DelayLine {
    /// An empty line that holds at most `limit` frames.
    pub fn new(limit: usize) -> DelayLine {
        DelayLine {
            held: VecDeque::new(),
            spare: Vec::new(),
            last_due: 0,
            limit,
        }
    }

    /// Holds a copy of `frame` until `due` (or until the frame ahead of it leaves, if later).
    /// False if the line is full.
    pub fn hold(&mut self, due: u64, frame: &[u8]) -> bool {
        if self.held.len() >= self.limit {
            return false;
        }
        let mut buf = self.spare.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(frame);
        self.last_due = self.last_due.max(due);
        self.held.push_back(Held {
            due: self.last_due,
            frame: buf,
        });
        true
    }

    /// When the first frame is due, if any is held.
    pub fn next_due(&self) -> Option<u64> {
        self.held.front().map(|h| h.due)
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Hands the frames due by `until`, at most `max` of them, in order to `send`. Returns how
    /// many were handed over and how many of those `send` refused (they are gone).
    pub fn release(
        &mut self,
        until: u64,
        max: usize,
        mut send: impl FnMut(&[u8]) -> bool,
    ) -> (usize, usize) {
        let (mut sent, mut refused) = (0, 0);
        while sent < max && self.held.front().is_some_and(|h| h.due <= until) {
            let Some(h) = self.held.pop_front() else {
                break;
            };
            sent += 1;
            if !send(&h.frame) {
                refused += 1;
            }
            self.recycle(h.frame);
        }
        (sent, refused)
    }

    /// Drops every frame held; returns how many.
    pub fn clear(&mut self) -> usize {
        let n = self.held.len();
        while let Some(h) = self.held.pop_front() {
            self.recycle(h.frame);
        }
        n
    }

    fn recycle(&mut self, buf: Vec<u8>) {
        if self.spare.len() < SPARE_MAX {
            self.spare.push(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Releases everything due by `until` and returns the first byte of each.
    fn out(line: &mut DelayLine, until: u64) -> Vec<u8> {
        let mut v = Vec::new();
        line.release(until, usize::MAX, |f| {
            v.push(f[0]);
            true
        });
        v
    }

    #[test]
    fn frames_leave_when_due_in_arrival_order() {
        let mut line = DelayLine::new(10);
        assert!(line.hold(100, &[1, 0]));
        assert!(line.hold(150, &[2]));
        assert!(line.hold(120, &[3]), "due earlier than the one ahead");
        assert_eq!(line.next_due(), Some(100));
        assert!(out(&mut line, 99).is_empty());
        assert_eq!(out(&mut line, 100), [1]);
        assert_eq!(line.next_due(), Some(150));
        assert!(
            out(&mut line, 149).is_empty(),
            "the third waits behind the second"
        );
        assert_eq!(out(&mut line, 150), [2, 3]);
        assert!(line.is_empty());
        assert_eq!(line.next_due(), None);
    }

    #[test]
    fn releases_are_bounded_and_refusals_counted() {
        let mut line = DelayLine::new(10);
        for i in 0..5 {
            assert!(line.hold(10, &[i]));
        }
        let mut calls = 0;
        assert_eq!(
            line.release(10, 3, |f| {
                calls += 1;
                f[0] != 1
            }),
            (3, 1)
        );
        assert_eq!(calls, 3);
        assert_eq!(line.held.len(), 2);
        assert_eq!(out(&mut line, 10), [3, 4]);
    }

    #[test]
    fn a_full_line_refuses_and_clear_empties_it() {
        let mut line = DelayLine::new(2);
        assert!(line.hold(1, &[1]));
        assert!(line.hold(2, &[2; 1500]));
        assert!(!line.hold(3, &[3]));
        assert_eq!(line.clear(), 2);
        assert!(line.is_empty());
        assert!(line.hold(0, &[4]), "room again; buffers are reused");
        // The frame keeps the due time of the frames before it: order holds across a clear.
        assert_eq!(line.next_due(), Some(2));
        let mut got = Vec::new();
        line.release(5, 9, |f| {
            got = f.to_vec();
            true
        });
        assert_eq!(got, [4], "a reused buffer carries only the new frame");
    }
}
