//! Reading whole files, transparently decompressing gzip.

use std::io::Read;
use std::path::Path;

use crate::DataError;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Reads `path` whole; when it starts with the gzip magic it is decompressed.
///
/// Returns [`DataError::Empty`] for a file with no content (before or after decompression).
pub(crate) fn read_bytes(path: &Path) -> Result<Vec<u8>, DataError> {
    let raw = std::fs::read(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    decode(path, raw)
}

/// Decompresses `raw` when it is gzip, and rejects empty content; `path` names it in errors.
pub(crate) fn decode(path: &Path, raw: Vec<u8>) -> Result<Vec<u8>, DataError> {
    let bytes = if raw.starts_with(&GZIP_MAGIC) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .map_err(|source| DataError::Gzip {
                path: path.to_path_buf(),
                source,
            })?;
        out
    } else {
        raw
    };
    if bytes.is_empty() {
        return Err(DataError::Empty {
            path: path.to_path_buf(),
            header_only: false,
        });
    }
    Ok(bytes)
}

/// Reads `path` whole as UTF-8 text (gzip allowed).
pub(crate) fn read_text(path: &Path) -> Result<String, DataError> {
    let bytes = read_bytes(path)?;
    bytes_to_text(path, bytes)
}

/// Interprets `bytes` as UTF-8, naming `path` in the error.
pub(crate) fn bytes_to_text(path: &Path, bytes: Vec<u8>) -> Result<String, DataError> {
    String::from_utf8(bytes).map_err(|e| {
        DataError::format(
            path,
            format!(
                "not UTF-8 text (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
        )
    })
}
