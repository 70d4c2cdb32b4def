//! What a router never forwards (RFC 1812), in the namespace lab (`tools/braid-lab up --nat`):
//! broadcasts (limited and the LAN's directed one), multicast and martian sources from the LAN
//! host put not one packet on an uplink, with braid owning the LAN interface (the edge counts
//! each refusal under its reason) and sharing it with the host (`--shared-lan`: broadcasts and
//! multicast are the kernel's and never reach braid; a martian source to a routed address is
//! braid's, and refused). Before, 100 datagrams to the LAN's directed broadcast put 3200
//! packets on the uplinks: the edge sent them into the bond, the hub routed the LAN's prefix back
//! into it, until their TTL ran out.
//!
//! The lab needs root (network namespaces); without it the test is skipped, or fails if `CI` or
//! `BRAID_LAB=1` is set (`braid_testkit::lab`). `braidd` and `braidctl` are taken from the
//! directory of the test binary's profile (target/<profile>/).

mod common;

use braid_testkit::lab::{can_run, Need};
use common::{drops, exec, idle_link_packets, sh, text, Lab};
use serde_json::Value;
use std::time::Instant;

/// Datagrams the LAN host sends to each refused class.
const COUNT: u64 = 100;

/// Data packets the edge sealed into its bond, over all its links (braid's link counters: the
/// probes are not in them).
fn sealed(lab: &Lab) -> u64 {
    lab.braidctl("edge", "links")["links"]
        .as_array()
        .expect("links")
        .iter()
        .map(|l| l["tx"]["packets"].as_u64().expect("tx packets"))
        .sum()
}

/// ICMP errors the edge sent, summed over workers.
fn icmp_errors(stats: &Value) -> u64 {
    stats["workers"]
        .as_array()
        .expect("workers")
        .iter()
        .filter_map(|w| w["icmp_errors"].as_u64())
        .sum()
}

/// `COUNT` ICMP echo requests from the LAN host, 10 ms apart (TTL 64, multicast too), waiting
/// 1 s for the last answer, killed after 10 s whatever happens (ping's own deadline, `-w`,
/// would keep sending past the count when nothing answers); `extra` goes before the
/// destination.
fn pings(lab: &Lab, extra: &str, dst: &str) {
    let line = format!("timeout 10 ping -n -q -c {COUNT} -i 0.01 -W 1 -t 64 {extra} {dst}");
    // No answer is expected: the exit status says so, and is not looked at.
    let out = exec(&lab.ns("lan"), &common::args(&line));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("{COUNT} packets transmitted")),
        "{line}:\n{}",
        text(&out)
    );
}

#[test]
fn broadcasts_multicast_and_martians_from_the_lan_never_reach_an_uplink() {
    lan_noise_stays_home("hy", false);
}

#[test]
fn broadcasts_and_martians_from_a_shared_lan_never_reach_an_uplink() {
    lan_noise_stays_home("sb", true);
}

/// Broadcasts, multicast and a martian source from the LAN host, on a LAN braid owns or
/// shares with the host: nothing goes up an uplink, and braid refuses what it sees.
fn lan_noise_stays_home(prefix: &str, shared: bool) {
    if !can_run(Need::Namespaces) {
        return;
    }
    let options = if shared {
        "--nat --shared-lan"
    } else {
        "--nat"
    };
    let lab = Lab::up(format!("{prefix}{}", std::process::id()), options);
    lab.start_braid();
    lab.wait_for_path();
    // A link-local source on the LAN host, as a host without DHCP lease picks one.
    sh(&lab.ns("lan"), "ip addr add 169.254.7.7/32 dev eth0");
    let before = (
        lab.upstream_packets(),
        sealed(&lab),
        lab.braidctl("edge", "stats"),
    );
    let started = Instant::now();
    pings(&lab, "-b", "198.18.1.255"); // the LAN's directed broadcast
    pings(&lab, "-b", "255.255.255.255"); // the limited broadcast
    pings(&lab, "", "224.0.0.251"); // a multicast group (mDNS)
    pings(&lab, "-I 169.254.7.7", "203.0.113.130"); // a martian source
    let after = (
        lab.upstream_packets(),
        sealed(&lab),
        lab.braidctl("edge", "stats"),
    );
    let idle = idle_link_packets(started.elapsed().as_secs_f64());
    let up = [after.0 .0 - before.0 .0, after.0 .1 - before.0 .1];
    assert_eq!(
        after.1 - before.1,
        0,
        "the edge sealed packets into its bond\n{}",
        lab.logs()
    );
    assert!(
        up.iter().all(|n| *n <= idle),
        "{up:?} packets went up isp1 and isp2, more than the probes' {idle} each\n{}",
        lab.logs()
    );
    eprintln!("up the uplinks (isp1, isp2): {up:?}, probes and ARP allowed: {idle} each");
    let counted = |reason: &str| drops(&after.2, reason) - drops(&before.2, reason);
    if shared {
        // Broadcasts and multicast are the kernel's on a shared LAN: braid never sees them.
        assert_eq!(
            counted("broadcast") + counted("multicast"),
            0,
            "{}",
            after.2["drops"]
        );
    } else {
        assert!(counted("broadcast") >= 2 * COUNT, "{}", after.2["drops"]);
        // The multicast MAC is not the edge's: refused at Ethernet already, or as multicast.
        assert!(
            counted("multicast") + counted("not_for_us") >= COUNT,
            "{}",
            after.2["drops"]
        );
    }
    // A martian source to a routed address is braid's in either mode, and refused.
    assert!(counted("martian_source") >= COUNT, "{}", after.2["drops"]);
    eprintln!(
        "the edge refused: broadcast {}, multicast {}, not_for_us {}, martian_source {}",
        counted("broadcast"),
        counted("multicast"),
        counted("not_for_us"),
        counted("martian_source")
    );
    // No ICMP error about any of them.
    assert_eq!(icmp_errors(&after.2), icmp_errors(&before.2), "{}", after.2);
    // The path still works.
    lab.wait_for_path();
}
