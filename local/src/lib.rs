//! Qubit on one machine: the plain tokio runner, the private PostgreSQL it starts when none
//! is configured, and the webhook test service.

pub mod embedded_postgres;
pub mod runner;
pub mod sink;
