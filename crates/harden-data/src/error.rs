use std::path::{Path, PathBuf};

/// Everything that can go wrong while reading or preparing a dataset.
///
/// Every variant that concerns a file names it, so a message is enough to find the problem.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file could not be opened or read.
    #[error("{path}: cannot read file: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file starts like gzip but does not decompress.
    #[error("{path}: corrupt gzip data: {source}")]
    Gzip {
        /// The file.
        path: PathBuf,
        /// The decompression error.
        #[source]
        source: std::io::Error,
    },
    /// The file (after decompression) holds no data, or only a header line.
    #[error("{path}: {}", if *header_only { "a header line and no data rows after it" } else { "file is empty" })]
    Empty {
        /// The file.
        path: PathBuf,
        /// Whether the file has a header line (and nothing after it).
        header_only: bool,
    },
    /// The file does not start with the magic number its format requires.
    #[error("{path}: bad magic number {found:#010x}, expected {expected:#010x} ({what})")]
    BadMagic {
        /// The file.
        path: PathBuf,
        /// The magic number found.
        found: u32,
        /// The magic number expected.
        expected: u32,
        /// What kind of file was expected.
        what: &'static str,
    },
    /// The file is shorter than its header or record layout says.
    #[error("{path}: truncated: expected {expected} bytes, found {found}")]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Bytes the header or record layout requires.
        expected: u64,
        /// Bytes present.
        found: u64,
    },
    /// The file is longer than its header says.
    #[error(
        "{path}: data continues past the {expected} bytes the header describes (at least {extra} more byte(s))"
    )]
    TrailingBytes {
        /// The file.
        path: PathBuf,
        /// Bytes the header describes.
        expected: u64,
        /// Bytes read beyond them (reading stops one byte past the declared end).
        extra: u64,
    },
    /// Two files that must describe the same samples disagree.
    #[error("{images} holds {n_images} samples but {labels} holds {n_labels} labels")]
    CountMismatch {
        /// The samples file.
        images: PathBuf,
        /// Number of samples in it.
        n_images: usize,
        /// The labels file.
        labels: PathBuf,
        /// Number of labels in it.
        n_labels: usize,
    },
    /// A CSV cell that must be a number is not.
    #[error("{path}: line {line}, column {column}: expected a number, found {value:?}")]
    NotNumeric {
        /// The file.
        path: PathBuf,
        /// 1-based line number in the file.
        line: usize,
        /// 1-based column number.
        column: usize,
        /// The cell's text.
        value: String,
    },
    /// A row has the wrong number of fields.
    #[error("{path}: line {line}: expected {expected} fields, found {found}")]
    RaggedRow {
        /// The file.
        path: PathBuf,
        /// 1-based line number in the file.
        line: usize,
        /// Fields expected (from the header or the first row).
        expected: usize,
        /// Fields found.
        found: usize,
    },
    /// A label is not a valid class index.
    #[error(
        "{path}: line {line}: label {label:?} out of range, expected a class index in 0..{num_classes}"
    )]
    LabelOutOfRange {
        /// The file.
        path: PathBuf,
        /// 1-based line (text formats) or record number (binary formats).
        line: usize,
        /// The label as found.
        label: String,
        /// Number of classes the file declares.
        num_classes: usize,
    },
    /// Any other violation of the file format.
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong, and what was expected.
        message: String,
    },
    /// A dataset name that harden does not know.
    #[error(
        "unknown dataset {name:?}: expected digits, breast-cancer, mnist, fashion-mnist, csv:PATH or tsv:PATH"
    )]
    UnknownDataset {
        /// The name given.
        name: String,
    },
    /// A dataset read from a data directory is not there.
    #[error(
        "dataset {name}: {path} not found (set --data-dir or HARDEN_DATA_DIR to a folder holding {name}/)"
    )]
    Missing {
        /// The dataset name.
        name: String,
        /// The file looked for.
        path: PathBuf,
    },
    /// An argument to a data operation is out of its valid range.
    #[error("invalid {what}: {message}")]
    InvalidArgument {
        /// The argument.
        what: &'static str,
        /// What is wrong, and what was expected.
        message: String,
    },
}

impl DataError {
    /// [`DataError::Format`] of the file `path`, saying `message`.
    pub fn format(path: &Path, message: impl Into<String>) -> Self {
        Self::Format {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }
}
