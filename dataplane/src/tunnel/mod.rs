//! The braid tunnel: header, AEAD sealing and the replay window. No I/O here.
