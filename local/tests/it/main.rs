//! Qubit's tests against a real PostgreSQL and a real receiver on loopback, in one binary.

mod api;
mod cases;
mod common;
mod dispatch;
mod eventbridge;
mod faults;
mod scheduler;
mod startup;
mod tls;
