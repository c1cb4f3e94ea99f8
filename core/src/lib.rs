//! Qubit's shared library: the message rules, the PostgreSQL store, the dispatcher, the
//! webhook client, the scheduler control, and the HTTP API.
//!
//! The local runner (`qubit-local`) and the two Lambda functions are thin wrappers around
//! what is here; [`app`] assembles the parts from a [`config::Config`].

pub mod app;
pub mod config;
pub mod dispatch;
pub mod error;
pub mod http;
pub mod message;
pub mod retry;
pub mod schedule;
pub mod secrets;
pub mod store;
pub mod telemetry;
pub mod webhook;
