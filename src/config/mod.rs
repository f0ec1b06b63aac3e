//! The fleet config file: TOML → validated [`Config`], or every problem in
//! it at once, each located (`file:line:column`), quoted and, where possible,
//! with a suggestion.
//!
//! The loader is pure: it reads no environment and measures nothing; the
//! caller passes the host's size in [`HostFacts`] for the pool defaults.

mod diag;
pub mod export;
mod hints;
mod load;
pub mod model;
mod render;
mod topo;
mod words;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

pub use crate::core::keys;
pub use crate::core::signal::{parse_signal, signal_name};
pub use crate::core::units::{format_duration, format_size, parse_duration, parse_size};
pub use diag::{ConfigErrors, Diagnostic};
pub use model::*;
pub use topo::topo_order;
pub use words::split_words;

/// What the pool defaults to when `[pool]` does not say: the host's size,
/// measured by the caller.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HostFacts {
    /// Logical CPUs.
    pub cpus: f64,
    /// Total memory in bytes.
    pub memory: u64,
}

/// Loads config text. `path` is used only to name the file in messages, to
/// resolve relative `cwd`/`data_dir` against its directory, and as
/// [`Config::source`]; without it messages say `<config>` and relative
/// paths stay relative.
pub fn load_str(text: &str, path: Option<&Path>, host: &HostFacts) -> Result<Config, ConfigErrors> {
    let origin = load::Origin {
        display: path.map_or_else(|| "<config>".to_owned(), |p| p.display().to_string()),
        base_dir: path.and_then(Path::parent).map(Path::to_path_buf),
        source: path.map(Path::to_path_buf),
    };
    load::load(text, origin, host)
}

/// Reads and loads a config file. Messages name the file as given; relative
/// paths in it are resolved against its directory made absolute (from the
/// current directory), and [`Config::source`] is the absolute path. An
/// unreadable file is one diagnostic naming the path and the OS error.
pub fn load_file(path: &Path, host: &HostFacts) -> Result<Config, ConfigErrors> {
    let display = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors::whole_file(
            display.clone(),
            format!("cannot read config file {display}: {e}"),
        )
    })?;
    let absolute: PathBuf = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let origin = load::Origin {
        display,
        base_dir: absolute.parent().map(Path::to_path_buf),
        source: Some(absolute),
    };
    load::load(&text, origin, host)
}

/// The certificates of a PEM file (a webhook notifier's `ca_file`): at
/// least one, each parsed.
pub fn pem_certificates(
    path: &Path,
) -> Result<Vec<tokio_rustls::rustls::pki_types::CertificateDer<'static>>, String> {
    use tokio_rustls::rustls::pki_types::{CertificateDer, pem::PemObject};
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not a PEM certificate file ({e:?})"))?;
    if certs.is_empty() {
        return Err("no certificate in it".into());
    }
    Ok(certs)
}
