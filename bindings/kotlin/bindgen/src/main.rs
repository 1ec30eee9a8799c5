//! `uniffi-bindgen`, built from the same uniffi as `ferrymq-kotlin` so that the generated
//! Kotlin always matches the library's scaffolding (library mode:
//! `uniffi-bindgen generate --library target/debug/libferrymq_kotlin.so --language kotlin`).

fn main() {
    uniffi::uniffi_bindgen_main()
}
