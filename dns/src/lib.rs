//! A fake authoritative DNS server for the lab: it answers A and AAAA queries from a given name
//! table, on UDP and TCP sockets the caller binds, and never recurses.
//!
//! It knows nothing of Microsoft Defender for Endpoint; the harness hands it the names to serve.
//! Names inside a served zone but not in the table are NXDOMAIN, names outside every zone are
//! REFUSED, so a client that leaks a lookup it should not make fails loudly instead of reaching
//! the real Internet. Every query is journaled, and per-name faults (SERVFAIL, NXDOMAIN, silence,
//! delay) can be switched on while the server runs.
//!
//! # Layout
//! - [`table`]: the name table ([`NameTable`]): exact names and `*.suffix` wildcards.
//! - [`server`]: starting ([`spawn`]) and stopping ([`Running`]) the server, and its [`Config`].
//! - `handler` (private): the request handler that decides each answer.
//! - [`journal`]: the bounded query journal ([`Journal`], [`QueryRecord`]).
//! - [`fault`]: per-name fault injection ([`Fault`], [`Faults`]).
//! - [`client`]: a stub resolver ([`resolve`]) that queries a given server directly.
//! - [`error`]: the crate's [`Error`].

pub mod client;
pub mod error;
pub mod fault;
mod handler;
pub mod journal;
pub mod server;
pub mod table;

pub use client::resolve;
pub use error::Error;
pub use fault::{Fault, Faults};
pub use journal::{Journal, QueryRecord};
pub use server::{Config, Running, spawn};
pub use table::NameTable;
