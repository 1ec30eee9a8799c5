//! `ferrymq`: the FerryMQ server binary.

mod auth;
mod config;

fn main() {}
