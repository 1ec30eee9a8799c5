//! FerryMQ core.
#![deny(missing_docs)]
