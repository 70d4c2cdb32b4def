//! A reflector: frames received on one AF_XDP port leave on another (or the same) with new
//! MAC addresses and nothing else changed. On the lab's veths it measures what AF_XDP forwarding
//! itself costs, the ceiling any AF_XDP router on this machine stays under.

use braid_dataplane::io::{PortId, Ports, Verdict};
use braid_dataplane::wire::Mac;
use std::io;

/// Where reflected frames go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reflection {
    /// Port frames are received on.
    pub from: PortId,
    /// Port they leave by.
    pub to: PortId,
    /// Their new Ethernet destination.
    pub dst_mac: Mac,
    /// Their new Ethernet source.
    pub src_mac: Mac,
}

/// Reflects one batch; frames shorter than an Ethernet header are dropped. Frames arriving on
/// the other port (if any) are dropped. Returns the number of frames received on `from`.
pub fn reflect_round<P: Ports>(ports: &mut P, r: &Reflection, batch: usize) -> io::Result<usize> {
    let got = ports.rx_batch(r.from, batch, &mut |f| {
        let Some(h) = f.data_mut().first_chunk_mut::<12>() else {
            return Verdict::Drop;
        };
        h[..6].copy_from_slice(&r.dst_mac);
        h[6..].copy_from_slice(&r.src_mac);
        Verdict::Tx(r.to)
    })?;
    let other = if r.to != r.from {
        ports.rx_batch(r.to, batch, &mut |_| Verdict::Drop)?
    } else {
        0
    };
    if got + other > 0 {
        ports.flush()?;
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;
    use braid_dataplane::io::MemPorts;

    #[test]
    fn frames_leave_by_the_other_port_with_new_macs() {
        let mut ports = MemPorts::new(2, 2048);
        let mut f = vec![0xaa; 60];
        f[12] = 0x08;
        assert!(ports.inject(0, &f));
        assert!(ports.inject(0, &[1, 2, 3]));
        assert!(ports.inject(1, &[9; 60]));
        let r = Reflection {
            from: 0,
            to: 1,
            dst_mac: [2, 0, 0, 0, 0, 2],
            src_mac: [2, 0, 0, 0, 0, 1],
        };
        assert_eq!(reflect_round(&mut ports, &r, 64).unwrap(), 2);
        let out = ports.take_tx(1);
        assert_eq!(out.len(), 1);
        assert_eq!(&out[0][..12], &[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]);
        assert_eq!(&out[0][12..], &f[12..]);
        assert!(ports.take_tx(0).is_empty());
        assert_eq!(
            ports.counters(1).rx_packets,
            1,
            "the other port was drained"
        );
    }

    #[test]
    fn one_port_reflects_back_out_of_itself() {
        let mut ports = MemPorts::new(1, 2048);
        assert!(ports.inject(0, &[7; 64]));
        let r = Reflection {
            from: 0,
            to: 0,
            dst_mac: [2; 6],
            src_mac: [3; 6],
        };
        assert_eq!(reflect_round(&mut ports, &r, 64).unwrap(), 1);
        let out = ports.take_tx(0);
        assert_eq!(
            out,
            vec![[[2u8; 6], [3; 6]]
                .concat()
                .into_iter()
                .chain([7; 52])
                .collect::<Vec<_>>()]
        );
    }
}
