//! The emulator: [`Links`], the paths and their directions shared by every thread (the control
//! socket changes them), and [`Worker`], one thread's rounds over the ports of one queue.
//!
//! Path *i* is ports `2i` (A) and `2i + 1` (B) of a worker's [`Ports`]: frames received on A go
//! up to B, frames received on B go down to A, on the queue they came in on. A round reads every
//! port, has each frame's direction decide its fate and keeps a copy of the survivors in the
//! worker's delay line for that direction (the frame's own buffer goes back to the free list at
//! once), then releases what is due and flushes. Every step is bounded per round.

use super::delay::DelayLine;
use super::direction::{Counters, Direction};
use super::scope::{check_path_name, Dir, Scope};
use super::settings::{Change, Settings};
use braid_dataplane::io::{Ports, Verdict};
use serde::{Deserialize, Serialize};
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Frames read from one port per round at most.
pub const RX_BATCH: usize = 64;
/// Frames one direction releases per round at most.
pub const RELEASE_MAX: usize = 256;
/// Frames one worker's delay line holds at most, per direction.
pub const HELD_MAX: usize = 65_536;

/// A path as given on the command line: `NAME=A,B`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathSpec {
    /// Its name.
    pub name: String,
    /// The near interface (frames from it go up).
    pub a: String,
    /// The far interface (frames from it go down).
    pub b: String,
}

impl PathSpec {
    /// Parses `NAME=A,B`.
    pub fn parse(s: &str) -> Result<PathSpec, String> {
        let bad = || format!("`{s}` is not a path: give NAME=A,B, e.g. isp1=a1,b1");
        let (name, ends) = s.split_once('=').ok_or_else(bad)?;
        let (a, b) = ends.split_once(',').ok_or_else(bad)?;
        check_path_name(name)?;
        if a.is_empty() || b.is_empty() || a == b || b.contains(',') {
            return Err(bad());
        }
        Ok(PathSpec {
            name: name.into(),
            a: a.into(),
            b: b.into(),
        })
    }
}

/// One direction's settings and counters, as `show` reports them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DirStatus {
    /// What it does.
    pub settings: Settings,
    /// What it did.
    pub counters: Counters,
}

/// One path's state, as `show` reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathStatus {
    /// Its name and interfaces.
    pub path: PathSpec,
    /// A to B.
    pub up: DirStatus,
    /// B to A.
    pub down: DirStatus,
}

/// Index of a direction in a path's pair.
fn slot(dir: Dir) -> usize {
    match dir {
        Dir::Up => 0,
        Dir::Down => 1,
    }
}

#[derive(Debug)]
struct Path {
    spec: PathSpec,
    /// Up, then down.
    dirs: [Mutex<Direction>; 2],
}

/// The paths, shared by the workers and the control socket.
#[derive(Debug)]
pub struct Links {
    paths: Vec<Path>,
}

/// Locks a direction; a thread that panicked holding it left only counters behind.
fn lock(d: &Mutex<Direction>) -> MutexGuard<'_, Direction> {
    d.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Links {
    /// Paths with default settings, then `changes` applied; randomness from `seed`.
    pub fn new(specs: Vec<PathSpec>, changes: &[Change], seed: u64) -> Result<Links, String> {
        for (i, p) in specs.iter().enumerate() {
            if specs[..i].iter().any(|o| o.name == p.name) {
                return Err(format!("--path: `{}` named twice", p.name));
            }
        }
        let mut n = 0u64;
        let mut direction = || {
            n += 1;
            Mutex::new(Direction::new(Settings::default(), seed.wrapping_add(n)))
        };
        let paths = specs
            .into_iter()
            .map(|spec| Path {
                spec,
                dirs: [direction(), direction()],
            })
            .collect();
        let links = Links { paths };
        links.set(changes)?;
        Ok(links)
    }

    /// The interfaces in port order: A and B of each path.
    pub fn interfaces(&self) -> Vec<String> {
        self.paths
            .iter()
            .flat_map(|p| [p.spec.a.clone(), p.spec.b.clone()])
            .collect()
    }

    /// The directions in port order: up and down of each path.
    fn dirs(&self) -> impl Iterator<Item = &Mutex<Direction>> {
        self.paths.iter().flat_map(|p| &p.dirs)
    }

    /// Checks that `scope` names a path that exists.
    fn check(&self, scope: &Scope) -> Result<(), String> {
        match &scope.path {
            Some(name) if !self.paths.iter().any(|p| &p.spec.name == name) => {
                let names: Vec<&str> = self.paths.iter().map(|p| p.spec.name.as_str()).collect();
                Err(format!("no path `{name}` (paths: {})", names.join(", ")))
            }
            _ => Ok(()),
        }
    }

    /// Applies `f` to the settings of every direction `scope` covers.
    fn each(&self, scope: &Scope, f: impl Fn(&mut Settings)) {
        for p in &self.paths {
            for dir in Dir::BOTH {
                if scope.covers(&p.spec.name, dir) {
                    let mut d = lock(&p.dirs[slot(dir)]);
                    let mut s = d.settings().clone();
                    f(&mut s);
                    d.set(s);
                }
            }
        }
    }

    /// Applies parameter changes in order; nothing changes if any names an unknown path.
    pub fn set(&self, changes: &[Change]) -> Result<(), String> {
        for c in changes {
            self.check(&c.scope)
                .map_err(|e| format!("{} {}: {e}", c.value.flag(), c.scope))?;
        }
        for c in changes {
            self.each(&c.scope, |s| c.value.apply(s));
        }
        Ok(())
    }

    /// Switches the blackhole of every direction in `scope` on or off.
    pub fn cut(&self, scope: &Scope, on: bool) -> Result<(), String> {
        self.check(scope)?;
        self.each(scope, |s| s.cut = on);
        Ok(())
    }

    /// Every path's settings and counters.
    pub fn status(&self) -> Vec<PathStatus> {
        let dir = |d: &Mutex<Direction>| {
            let d = lock(d);
            DirStatus {
                settings: d.settings().clone(),
                counters: d.counters(),
            }
        };
        self.paths
            .iter()
            .map(|p| PathStatus {
                path: p.spec.clone(),
                up: dir(&p.dirs[0]),
                down: dir(&p.dirs[1]),
            })
            .collect()
    }
}

/// What a round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Round {
    /// Frames received.
    pub received: usize,
    /// Frames released.
    pub released: usize,
    /// Some batch was full: more may be waiting.
    pub more: bool,
}

/// One thread's part: a delay line per direction, for the frames it received.
#[derive(Debug)]
pub struct Worker {
    links: Arc<Links>,
    /// In port order: up and down of each path.
    lines: Vec<DelayLine>,
}

impl Worker {
    /// A worker on `links` with empty delay lines.
    pub fn new(links: Arc<Links>) -> Worker {
        let lines = links.dirs().map(|_| DelayLine::new(HELD_MAX)).collect();
        Worker { links, lines }
    }

    /// When the next frame held is due.
    pub fn next_due(&self) -> Option<u64> {
        self.lines.iter().filter_map(DelayLine::next_due).min()
    }

    /// One round over `ports`, reading the time from `clock`: frames are stamped with a reading
    /// taken once they are in hand (never before they arrived), and the frames due within `early`
    /// of a reading taken after that are released.
    pub fn round<P: Ports>(
        &mut self,
        ports: &mut P,
        clock: impl Fn() -> u64,
        early: u64,
    ) -> io::Result<Round> {
        let mut r = Round::default();
        let sides = self.links.dirs().zip(self.lines.iter_mut());
        for (port, (dir, line)) in (0..ports.len()).zip(sides) {
            let mut stamp = None;
            let got = ports.rx_batch(port, RX_BATCH, &mut |f| {
                let now = *stamp.get_or_insert_with(&clock);
                let frame = f.data();
                let mut d = lock(dir);
                if let Ok(due) = d.admit(now, frame.len()) {
                    if !line.hold(due, frame) {
                        d.overflowed();
                    }
                }
                Verdict::Drop
            })?;
            r.received += got;
            r.more |= got == RX_BATCH;
        }
        let release_by = clock() + early;
        for (i, (dir, line)) in self.links.dirs().zip(self.lines.iter_mut()).enumerate() {
            if line.is_empty() {
                continue;
            }
            // Up (even) leaves by B, down (odd) by A.
            let to = i ^ 1;
            let mut d = lock(dir);
            if d.settings().cut {
                d.dropped_in_flight(line.clear() as u64);
                continue;
            }
            let mut bytes = 0;
            let (sent, refused) = line.release(release_by, RELEASE_MAX, |frame| {
                let ok = ports.tx_copy(to, frame);
                bytes += if ok { frame.len() as u64 } else { 0 };
                ok
            });
            d.released((sent - refused) as u64, bytes, refused as u64);
            r.released += sent;
            r.more |= sent == RELEASE_MAX;
        }
        if r.received + r.released > 0 {
            ports.flush()?;
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linkem::settings::parse_delay;
    use braid_dataplane::io::MemPorts;
    use std::cell::Cell;

    const MS: u64 = 1_000_000;

    fn links(changes: &[Change]) -> Arc<Links> {
        let specs = ["isp1=a1,b1", "isp2=a2,b2"]
            .iter()
            .map(|s| PathSpec::parse(s).unwrap())
            .collect();
        Arc::new(Links::new(specs, changes, 1).unwrap())
    }

    /// A frame marked by its last byte.
    fn frame(mark: u8) -> Vec<u8> {
        let mut f = vec![0u8; 60];
        f[59] = mark;
        f
    }

    fn marks(ports: &mut MemPorts, port: usize) -> Vec<u8> {
        ports.take_tx(port).iter().map(|f| f[59]).collect()
    }

    #[test]
    fn paths_parse_and_bad_ones_are_named() {
        assert_eq!(
            PathSpec::parse("isp1=a1,b1"),
            Ok(PathSpec {
                name: "isp1".into(),
                a: "a1".into(),
                b: "b1".into()
            })
        );
        for bad in [
            "isp1",
            "isp1=a1",
            "isp1=a1,a1",
            "isp1=,b1",
            "isp1=a,b,c",
            "up=a,b",
        ] {
            assert!(PathSpec::parse(bad).is_err(), "{bad}");
        }
        let p = PathSpec::parse("isp1=a1,b1").unwrap();
        assert_eq!(
            Links::new(vec![p.clone(), p], &[], 0).unwrap_err(),
            "--path: `isp1` named twice"
        );
        assert_eq!(links(&[]).interfaces(), ["a1", "b1", "a2", "b2"]);
    }

    #[test]
    fn each_direction_gets_its_own_delay() {
        let changes = [
            parse_delay("5ms").unwrap(),
            parse_delay("isp2=15ms").unwrap(),
            parse_delay("isp2:down=1ms").unwrap(),
        ];
        let links = links(&changes);
        let mut w = Worker::new(Arc::clone(&links));
        let mut q = MemPorts::new(4, 2048);
        for (port, mark) in [(0, 1), (1, 2), (2, 3), (3, 4)] {
            assert!(q.inject(port, &frame(mark)));
        }
        let r = w.round(&mut q, || 0, 0).unwrap();
        assert_eq!((r.received, r.released, r.more), (4, 0, false));
        assert_eq!(w.next_due(), Some(MS));
        w.round(&mut q, || MS, 0).unwrap();
        assert_eq!(marks(&mut q, 2), [4], "isp2 down after 1 ms");
        w.round(&mut q, || 5 * MS, 0).unwrap();
        assert_eq!(marks(&mut q, 1), [1], "isp1 up: a1 to b1");
        assert_eq!(marks(&mut q, 0), [2], "isp1 down: b1 to a1");
        w.round(&mut q, || 14 * MS, MS - 1).unwrap();
        assert!(marks(&mut q, 3).is_empty());
        w.round(&mut q, || 14 * MS, MS).unwrap();
        assert_eq!(marks(&mut q, 3), [3], "released within `early` of its time");
        assert_eq!(w.next_due(), None);
        let st = links.status();
        assert_eq!(st[1].up.settings.delay_ns, 15 * MS);
        assert_eq!(st[1].down.settings.delay_ns, MS);
        let c = st[0].up.counters;
        assert_eq!(
            (c.rx_packets, c.tx_packets, c.tx_bytes, c.held),
            (1, 1, 60, 0)
        );
    }

    #[test]
    fn frames_are_stamped_once_in_hand_one_reading_per_batch() {
        let links = links(&[parse_delay("2ms").unwrap()]);
        let mut w = Worker::new(Arc::clone(&links));
        let mut q = MemPorts::new(4, 2048);
        assert!(q.inject(0, &frame(1)) && q.inject(0, &frame(2)) && q.inject(2, &frame(3)));
        let t = Cell::new(0);
        let clock = || {
            t.set(t.get() + MS);
            t.get()
        };
        // Readings: port 0's batch at 1 ms, port 2's at 2 ms, the release at 3 ms.
        w.round(&mut q, clock, 0).unwrap();
        assert_eq!(t.get(), 3 * MS);
        assert_eq!(marks(&mut q, 1), [1, 2], "stamped at 1 ms, due at 3 ms");
        assert!(marks(&mut q, 3).is_empty(), "stamped at 2 ms, due at 4 ms");
        assert_eq!(w.next_due(), Some(4 * MS));
    }

    #[test]
    fn workers_share_the_settings_and_counters() {
        let links = links(&[parse_delay("isp1=1ms").unwrap()]);
        let mut w = [
            Worker::new(Arc::clone(&links)),
            Worker::new(Arc::clone(&links)),
        ];
        let mut q = [MemPorts::new(4, 2048), MemPorts::new(4, 2048)];
        for (i, (w, q)) in w.iter_mut().zip(&mut q).enumerate() {
            assert!(q.inject(0, &frame(i as u8)));
            w.round(q, || 0, 0).unwrap();
        }
        assert_eq!(links.status()[0].up.counters.held, 2);
        for (i, (w, q)) in w.iter_mut().zip(&mut q).enumerate() {
            w.round(q, || MS, 0).unwrap();
            assert_eq!(marks(q, 1), [i as u8], "each leaves by its own queue");
        }
        let c = links.status()[0].up.counters;
        assert_eq!((c.rx_packets, c.tx_packets, c.held), (2, 2, 0));
    }

    #[test]
    fn rounds_are_bounded() {
        let links = links(&[]);
        let mut w = Worker::new(links);
        let mut q = MemPorts::new(4, 2048);
        for i in 0..100 {
            assert!(q.inject(0, &frame(i)));
        }
        let r = w.round(&mut q, || 0, 0).unwrap();
        assert_eq!((r.received, r.released, r.more), (RX_BATCH, RX_BATCH, true));
        let r = w.round(&mut q, || 0, 0).unwrap();
        assert_eq!((r.received, r.more), (36, false));
        assert_eq!(marks(&mut q, 1), (0..100).collect::<Vec<u8>>());
    }

    #[test]
    fn cut_drops_arrivals_and_frames_in_flight_of_its_scope_until_restored() {
        let links = links(&[parse_delay("1ms").unwrap()]);
        let mut w = Worker::new(Arc::clone(&links));
        let mut q = MemPorts::new(4, 2048);
        for port in 0..4 {
            assert!(q.inject(port, &frame(port as u8)));
        }
        w.round(&mut q, || 0, 0).unwrap();
        let isp1 = Scope::parse("isp1").unwrap();
        links.cut(&isp1, true).unwrap();
        for port in 0..4 {
            assert!(q.inject(port, &frame(10 + port as u8)));
        }
        w.round(&mut q, || MS, 0).unwrap();
        assert!(marks(&mut q, 0).is_empty() && marks(&mut q, 1).is_empty());
        assert_eq!(marks(&mut q, 3), [2], "isp2 goes on");
        assert_eq!(marks(&mut q, 2), [3]);
        let st = links.status();
        assert!(st[0].up.settings.cut && st[0].down.settings.cut && !st[1].up.settings.cut);
        assert_eq!(st[0].up.counters.cut + st[0].down.counters.cut, 4);
        assert_eq!(st[0].up.counters.held + st[0].down.counters.held, 0);
        links.cut(&isp1, false).unwrap();
        assert!(q.inject(0, &frame(9)));
        w.round(&mut q, || 2 * MS, MS).unwrap();
        assert_eq!(marks(&mut q, 1), [9]);

        let nosuch = Scope::parse("isp3").unwrap();
        assert_eq!(
            links.cut(&nosuch, true).unwrap_err(),
            "no path `isp3` (paths: isp1, isp2)"
        );
        let changes = [
            parse_delay("7ms").unwrap(),
            parse_delay("isp3:up=5ms").unwrap(),
        ];
        assert_eq!(
            links.set(&changes).unwrap_err(),
            "--delay isp3:up: no path `isp3` (paths: isp1, isp2)"
        );
        assert_eq!(
            links.status()[0].up.settings.delay_ns,
            MS,
            "nothing applied"
        );
    }
}
