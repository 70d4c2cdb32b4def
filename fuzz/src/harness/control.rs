//! The control protocol decoder, and the changes it lets through applied to a
//! running configuration.
//!
//! Input: request lines separated by `\n`, sent one after the other to one
//! daemon's runtime (edge config, in-memory workers). Checked: the decoder
//! refuses with `malformed` or `version` only; a decoded request encodes and
//! decodes back to itself; a change either installs a new snapshot
//! (generation + 1) of a configuration that validates, or is refused with the
//! running configuration and snapshot untouched.

use super::pipeline::EDGE;
use super::scratch::Scratch;
use super::EDGE_MACS;
use braid_control::config::Config;
use braid_control::proto::{self, ErrorKind, Outcome, Request};
use braid_dataplane::control::Runtime;
use braid_dataplane::pipeline::Shared;
use braid_dataplane::snapshot::{Secrets, Snapshot};
use std::sync::Arc;

/// What the lines of one input did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// Lines decoded as requests.
    pub decoded: u64,
    /// Changes installed.
    pub changed: u64,
    /// Changes refused.
    pub refused: u64,
}

/// A runtime serving the edge config from a scratch directory (for `reload`).
fn runtime(s: &Scratch) -> Runtime {
    let cfg = Config::load(&s.config).expect("the scratch config loads");
    let secrets = Secrets::load(&cfg).expect("the scratch key files load");
    let snap = Snapshot::build(&cfg, &EDGE_MACS, &secrets, 1).expect("snapshot");
    let shared = Arc::new(Shared::new(snap, 7));
    Runtime::new(cfg, &s.config, EDGE_MACS.to_vec(), secrets, shared)
}

/// Runs one input.
pub fn control(data: &[u8]) -> Applied {
    let scratch = Scratch::new("control", EDGE);
    let mut rt: Option<Runtime> = None;
    let mut done = Applied::default();
    for line in data.split(|&b| b == b'\n') {
        let _ = proto::decode_response(line);
        let request = match proto::decode_request(line) {
            Ok(r) => r,
            Err(e) => {
                assert!(
                    matches!(e.kind, ErrorKind::Malformed | ErrorKind::Version),
                    "{e:?}"
                );
                let _ = proto::encode_response(Outcome::Error(e));
                continue;
            }
        };
        done.decoded += 1;
        let again = proto::encode_request(&request);
        assert_eq!(
            proto::decode_request(again.trim_end().as_bytes()).as_ref(),
            Ok(&request),
            "a request survives encoding: {again}"
        );
        if !is_change(&request) {
            continue;
        }
        let rt = rt.get_or_insert_with(|| runtime(&scratch));
        let generation = rt.shared().snapshot.load().generation;
        let config = format!("{:?}", rt.config());
        match rt.apply(&request) {
            Ok(changed) => {
                assert_eq!(changed.generation, generation + 1);
                assert_eq!(rt.shared().snapshot.load().generation, generation + 1);
                assert!(
                    rt.config().validate().is_ok(),
                    "installed an invalid config"
                );
                done.changed += 1;
            }
            Err(e) => {
                assert_eq!(rt.shared().snapshot.load().generation, generation);
                assert_eq!(
                    format!("{:?}", rt.config()),
                    config,
                    "a refusal changed the config: {e:?}"
                );
                done.refused += 1;
            }
        }
    }
    done
}

fn is_change(r: &Request) -> bool {
    matches!(
        r,
        Request::SetWeights { .. }
            | Request::AutoWeights { .. }
            | Request::SetMode { .. }
            | Request::SetLinkState { .. }
            | Request::AddRoute { .. }
            | Request::DelRoute { .. }
            | Request::AddRule { .. }
            | Request::DelRule { .. }
            | Request::Reload
    )
}
