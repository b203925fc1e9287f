//! The `python_value` target embeds CPython: give the targets an rpath to
//! the libpython pyo3 was configured with, or they would load whichever
//! libpython the system's loader finds first (or none).

fn main() {
    pyo3_build_config::add_libpython_rpath_link_args();
}
