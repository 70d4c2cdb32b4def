//! An uplink whose address the kernel gives (`address = "kernel"`, as from a DHCP client), in
//! the namespace lab (`braid-lab up --kernel-wan1`): braid takes wan1's address and isp1's
//! gateway from the edge host's kernel, and when the kernel moves wan1 to another address (a
//! new lease: `braid-lab readdress`), braid follows at once: its XDP program claims the tunnel's
//! ports on the new address, isp1's packets leave from it, and the hub, which learns the
//! edge's endpoint from authenticated packets, answers there. A TCP transfer that runs across
//! the change completes, and afterwards isp1 carries its share again.
//!
//! The lab needs root (network namespaces); without it the test is skipped, or fails if `CI` or
//! `BRAID_LAB=1` is set (`braid_testkit::lab`).

mod common;

use braid_testkit::lab::{can_run, Need};
use common::{Lab, Transfer};
use std::time::{Duration, Instant};

/// The edge's wan1 address as `braidctl status` shows it, with whether it is the kernel's.
fn wan1(lab: &Lab) -> (String, bool) {
    let status = lab.braidctl("edge", "status");
    let i = status["interfaces"]
        .as_array()
        .expect("interfaces")
        .iter()
        .find(|i| i["name"] == "wan1")
        .expect("wan1")
        .clone();
    (i["address"].to_string(), i["kernel"] == true)
}

/// The address the hub sends isp1's packets to (the port is that of the edge's worker).
fn hub_isp1_remote(lab: &Lab) -> String {
    let links = lab.braidctl("hub", "links");
    let l = links["links"]
        .as_array()
        .expect("links")
        .iter()
        .find(|l| l["name"] == "isp1")
        .expect("isp1")
        .clone();
    let remote = l["remote"].as_str().unwrap_or("none");
    remote.split(':').next().unwrap_or(remote).to_owned()
}

#[test]
fn an_uplink_address_the_kernel_changes_is_followed() {
    if !can_run(Need::Namespaces) {
        return;
    }
    let lab = Lab::up(
        format!("ka{}", std::process::id()),
        "--kernel-wan1 --weights 1,1 --rate1 50mbit --rate2 50mbit",
    );
    lab.start_braid();
    lab.wait_for_path();
    assert_eq!(wan1(&lab), ("\"198.18.11.2/24\"".to_owned(), true));
    assert_eq!(hub_isp1_remote(&lab), "198.18.11.2", "{}", lab.logs());

    // 30 MB each way over 100 Mbit/s: about five seconds, the new lease in the middle.
    let transfer = Transfer::start(&lab, 30_000_000);
    std::thread::sleep(Duration::from_secs(1));
    lab.cmd("readdress 198.18.11.9");
    let changed = Instant::now();
    while wan1(&lab).0 != "\"198.18.11.9/24\"" {
        if changed.elapsed() > Duration::from_secs(5) {
            lab.fail(&format!("braid kept wan1 at {:?}", wan1(&lab)));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!("braid took the new address within {:?}", changed.elapsed());
    let report = transfer.finish(&lab);
    eprintln!("transfer across the change: {report}");
    assert_eq!(hub_isp1_remote(&lab), "198.18.11.9", "{}", lab.logs());

    // isp1 carries its share again, from the new address (the hub's answers reach braid there,
    // or its probes would take isp1 down and isp2 would carry everything).
    let (e1, e2) = lab.upstream_packets();
    Transfer::start(&lab, 10_000_000).finish(&lab);
    let (e1_after, e2_after) = lab.upstream_packets();
    let (up1, up2) = (e1_after - e1, e2_after - e2);
    eprintln!("after the change, upstream packets: isp1 {up1}, isp2 {up2}");
    assert!(
        up1 * 10 >= (up1 + up2) * 3,
        "isp1 carried {up1} of {} packets after the change\n{}",
        up1 + up2,
        lab.logs()
    );
    let logs = lab.logs();
    assert!(
        !logs.contains("braid's XDP program: "),
        "the XDP program failed to follow\n{logs}"
    );
}
