//! Network interfaces as sysfs describes them, and MAC addresses as text.

use braid_dataplane::wire::Mac;

/// The MAC address of interface `name` in this network namespace.
pub fn mac_of(name: &str) -> Result<Mac, String> {
    let path = format!("/sys/class/net/{name}/address");
    let text =
        std::fs::read_to_string(&path).map_err(|e| format!("interface {name}: {path}: {e}"))?;
    parse_mac(text.trim()).map_err(|e| format!("interface {name}: {e}"))
}

/// Number of receive queues of interface `name` (1 when sysfs does not say).
pub fn rx_queues(name: &str) -> u32 {
    std::fs::read_dir(format!("/sys/class/net/{name}/queues"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
                .count() as u32
        })
        .unwrap_or(1)
        .max(1)
}

/// Parses `02:00:00:00:00:01`.
pub fn parse_mac(s: &str) -> Result<Mac, String> {
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut mac {
        *b = parts
            .next()
            .filter(|p| p.len() == 2)
            .and_then(|p| u8::from_str_radix(p, 16).ok())
            .ok_or_else(|| {
                format!("MAC address {s:?}: want six hex pairs like 02:00:00:00:00:01")
            })?;
    }
    if parts.next().is_some() {
        return Err(format!("MAC address {s:?}: more than six parts"));
    }
    Ok(mac)
}

/// `02:00:00:00:00:01`.
pub fn format_mac(m: &Mac) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_round_trip_and_bad_ones_are_refused() {
        let m = parse_mac("02:aB:00:10:ff:01").unwrap();
        assert_eq!(m, [2, 0xab, 0, 0x10, 0xff, 1]);
        assert_eq!(format_mac(&m), "02:ab:00:10:ff:01");
        for bad in [
            "",
            "02:00:00:00:00",
            "02:00:00:00:00:01:02",
            "2:0:0:0:0:1",
            "zz:00:00:00:00:01",
        ] {
            assert!(parse_mac(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn loopback_is_readable() {
        assert_eq!(mac_of("lo").unwrap(), [0; 6]);
        assert!(rx_queues("lo") >= 1);
        assert!(mac_of("braidnosuch0").is_err());
    }
}
