//! braid tools.
