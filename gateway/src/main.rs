//! `ferrymq`: the FerryMQ server binary.

mod config;

fn main() {}
