//! Errors at the FFI edge: a core [`Error`] becomes the Python exception of its kind, built by
//! `ferrymq._errors._from_kind`, the one table from `Error::kind()` to the `FerryError`
//! hierarchy. Arguments the binding itself rejects are reported as core errors too, so every
//! bad value surfaces the same way.

use ferrymq_core::Error;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

/// What a call into the client can fail with: the client's error, or a Python exception (a
/// callback that raised, a conversion, Ctrl-C).
#[derive(Debug)]
pub enum Failure {
    /// An error of the Rust client.
    Core(Error),
    /// A Python exception.
    Py(PyErr),
}

/// The result of a call into the client.
pub type Outcome<T> = Result<T, Failure>;

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Core(e)
    }
}

impl From<PyErr> for Failure {
    fn from(e: PyErr) -> Self {
        Failure::Py(e)
    }
}

impl Failure {
    /// The Python exception to raise.
    pub fn into_pyerr(self, py: Python<'_>) -> PyErr {
        match self {
            Failure::Core(e) => to_py_err(py, &e),
            Failure::Py(e) => e,
        }
    }
}

/// `ferrymq._errors._from_kind(kind, message, field)`.
static FROM_KIND: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// The Python exception for a client error: its class follows `e.kind()`, its `type` is
/// `urn:ferrymq:error:<kind>`, and `field` names the offending argument when known.
pub fn to_py_err(py: Python<'_>, e: &Error) -> PyErr {
    let field = match e {
        Error::InvalidArgument { field, .. } => Some(field.as_str()),
        _ => None,
    };
    let built = FROM_KIND
        .import(py, "ferrymq._errors", "_from_kind")
        .and_then(|from_kind| from_kind.call1((kind_of(e), e.to_string(), field)));
    match built {
        Ok(exception) => PyErr::from_value(exception),
        Err(import_failed) => import_failed,
    }
}

/// The kind of `e`. The remote transport reports a WebSocket upgrade that the gateway refused
/// with 401 or 403 (no token, a wrong one, one without the grant) as a connection error; that
/// is the gateway's `unauthorized` or `forbidden`, so it is raised as one.
fn kind_of(e: &Error) -> &'static str {
    match e {
        Error::Connection(detail) if detail.contains("HTTP error: 401") => "unauthorized",
        Error::Connection(detail) if detail.contains("HTTP error: 403") => "forbidden",
        other => other.kind(),
    }
}

/// A client result as a Python result.
pub fn raise<T>(py: Python<'_>, result: Outcome<T>) -> PyResult<T> {
    result.map_err(|f| f.into_pyerr(py))
}

/// An invalid argument, reported like the client's own validation errors.
pub fn invalid(field: &str, message: impl Into<String>) -> Failure {
    Failure::Core(Error::invalid(field, message))
}
