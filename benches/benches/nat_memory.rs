//! Memory of 1 M masquerade sessions, measured: the process's resident set (from
//! `/proc/self/statm`) before building one table with the default `max_sessions`
//! (1,048,576) and after filling it with 1 M sessions through `translate_out`,
//! printed with the table's own count of its heap bytes. A separate binary, so no
//! other bench's tables share the process. Run with
//! `cargo bench -p braid-benches --bench nat_memory`.

use braid_benches::{flow_frame, nat_pool, NOW};
use braid_dataplane::nat::{NatConfig, NatTable, PortSlice};

const SESSIONS: u32 = 1 << 20;

/// Resident bytes of this process, or `None` where `/proc` is missing.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Resident bytes of this process on transparent huge pages.
fn huge_page_bytes() -> Option<u64> {
    let rollup = std::fs::read_to_string("/proc/self/smaps_rollup").ok()?;
    let line = rollup.lines().find(|l| l.starts_with("AnonHugePages:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1 << 20)
}

fn main() {
    // Default limits but the per-host one: the frames come from 250 hosts.
    let config = NatConfig {
        max_per_host: SESSIONS as usize,
        ..NatConfig::new(nat_pool())
    };
    let slice = PortSlice {
        worker: 0,
        workers: 1,
    };
    // The frame buffer is reused, so the fill allocates nothing that stays.
    let mut packet = flow_frame(0)[14..].to_vec();
    let before = resident_bytes().expect("/proc/self/statm");
    let mut table = NatTable::new(&config, slice, 7).expect("table");
    let empty = resident_bytes().expect("/proc/self/statm");
    for i in 0..SESSIONS {
        packet.copy_from_slice(&flow_frame(i)[14..]);
        table.translate_out(&mut packet, NOW).expect("created");
    }
    let full = resident_bytes().expect("/proc/self/statm");
    assert_eq!(table.len(), SESSIONS as usize, "live sessions");
    let grown = full.saturating_sub(before);
    println!(
        "nat memory: {} sessions (max_sessions {}): resident +{:.1} MiB ({:.1} bytes per session), \
         +{:.1} MiB when empty; heap_bytes {:.1} MiB; {:.1} MiB on huge pages",
        table.len(),
        config.max_sessions,
        mib(grown),
        grown as f64 / f64::from(SESSIONS),
        mib(empty.saturating_sub(before)),
        mib(table.heap_bytes() as u64),
        mib(huge_page_bytes().unwrap_or(0)),
    );
}
