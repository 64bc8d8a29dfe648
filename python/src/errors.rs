//! The exceptions of the package, one per error type of the library, all under
//! `photonqa.PhotonqaError`; their messages are the CLI's one line (without `photonqa: `).

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

create_exception!(
    photonqa,
    PhotonqaError,
    PyException,
    "Base class of photonqa's errors; the message is the CLI's one-line error."
);
create_exception!(
    photonqa,
    ScenarioError,
    PhotonqaError,
    "A scenario that cannot be read or is invalid (file:line:column: message)."
);
create_exception!(
    photonqa,
    DataError,
    PhotonqaError,
    "An input array that cannot be read or used (its label: message)."
);
create_exception!(
    photonqa,
    GateError,
    PhotonqaError,
    "A baseline that cannot be read, or a run that cannot be compared with it."
);

/// One line, as the CLI prints errors: newlines become spaces.
fn one_line(message: impl ToString) -> String {
    message.to_string().replace('\n', " ")
}

/// A library error reported as text (the functions the CLI calls return `String` errors).
pub fn photonqa_error(message: impl ToString) -> PyErr {
    PhotonqaError::new_err(one_line(message))
}

/// A [`photonqa::data::DataError`].
pub fn data_error(error: photonqa::data::DataError) -> PyErr {
    DataError::new_err(one_line(error))
}

/// A [`photonqa::scenario::ScenarioError`].
pub fn scenario_error(error: photonqa::scenario::ScenarioError) -> PyErr {
    ScenarioError::new_err(one_line(error))
}

/// A [`photonqa::gate::GateError`].
pub fn gate_error(error: photonqa::gate::GateError) -> PyErr {
    GateError::new_err(one_line(error))
}

/// Adds the exception classes to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("PhotonqaError", py.get_type::<PhotonqaError>())?;
    m.add("ScenarioError", py.get_type::<ScenarioError>())?;
    m.add("DataError", py.get_type::<DataError>())?;
    m.add("GateError", py.get_type::<GateError>())?;
    Ok(())
}
