//! latchkey: a port-knocking daemon (`latchkey daemon`, knockd-compatible) and client
//! (`latchkey knock`, knock-compatible), small enough for home routers.
//!
//! The daemon's core (`config`, `packet`, `tracker`, `grant`, `capture::filter`) is pure: it
//! takes bytes, text and `now` as arguments and does no I/O, so it is unit-tested and fuzzed
//! without a network. The edges (`capture`, `iface`, `runner`, `logging`, `daemon`) are thin
//! wrappers around system calls.

#[cfg(target_os = "linux")]
pub mod capture;
pub mod cli;
#[cfg(feature = "client")]
pub mod client;
pub mod clock;
pub mod config;
#[cfg(target_os = "linux")]
pub mod daemon;
#[cfg(target_os = "linux")]
pub mod daemon_cli;
#[cfg(feature = "fwknopd")]
pub mod fwknop;
pub mod grant;
#[cfg(target_os = "linux")]
pub mod iface;
#[cfg(target_os = "linux")]
pub mod logging;
pub mod packet;
#[cfg(target_os = "linux")]
pub mod runner;
pub mod spa;
#[cfg(target_os = "linux")]
pub mod state;
pub mod tracker;
