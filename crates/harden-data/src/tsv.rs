//! Text classification TSV files.
//!
//! A header line names the columns; the label column is the one named `label` (or else the
//! first), the text column the one named `text` (or else the last). Other columns (`source`,
//! `group`, ...) are ignored. Fields are separated by tabs and not quoted; when the text is the
//! last column, tabs inside it are kept. Labels that are all whole numbers from 0 are class
//! indices; labels that hold no number are class names, numbered in sorted order; a column that
//! mixes them is an error naming the first stray label's line. Gzip is accepted.

use std::path::Path;

use crate::csv::encode_labels;
use crate::read::{bytes_to_text, decode, read_text};
use crate::{DataError, TextDataset};

/// Parses TSV text into a [`TextDataset`]. `path` only names the source in errors.
///
/// # Errors
///
/// [`DataError::Empty`] for no header or no data rows; [`DataError::Format`] for a header with
/// one column or a row with an empty text; [`DataError::RaggedRow`] for a row with too few
/// fields (or too many, when the text is not the last column).
pub fn parse(path: &Path, text: &str) -> Result<TextDataset, DataError> {
    parse_columns(path, text, &Columns::default())
}

/// Which columns of a TSV hold the texts and the labels; `None` applies the default rule
/// (`text`, else the last column; `label`, else the first).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Columns {
    /// Name of the text column.
    pub text: Option<String>,
    /// Name of the label column.
    pub label: Option<String>,
}

/// Parses TSV text as [`parse`] does, with the columns `columns` names.
///
/// # Errors
///
/// As [`parse`], and [`DataError::Format`] naming a requested column the header lacks, with
/// the columns it has.
pub fn parse_columns(
    path: &Path,
    text: &str,
    columns_wanted: &Columns,
) -> Result<TextDataset, DataError> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.strip_suffix('\r').unwrap_or(l)))
        .filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines.next().ok_or_else(|| DataError::Empty {
        path: path.to_path_buf(),
        header_only: false,
    })?;
    let columns: Vec<&str> = header.split('\t').map(str::trim).collect();
    if columns.len() < 2 {
        return Err(DataError::format(
            path,
            format!(
                "line 1: expected a tab-separated header with a label and a text column, found {header:?}"
            ),
        ));
    }
    let find = |wanted: &Option<String>, default: &str, fallback: usize| match wanted {
        Some(name) => columns.iter().position(|c| c == name).ok_or_else(|| {
            DataError::format(
                path,
                format!(
                    "line 1: no column named {name:?}; the header has {}",
                    columns.join(", ")
                ),
            )
        }),
        None => Ok(columns
            .iter()
            .position(|&c| c == default)
            .unwrap_or(fallback)),
    };
    let label_col = find(&columns_wanted.label, "label", 0)?;
    let text_col = find(&columns_wanted.text, "text", columns.len() - 1)?;
    // A name the header repeats leaves the column meant unknown.
    for col in [label_col, text_col] {
        let name = columns[col];
        let at: Vec<String> = (0..columns.len())
            .filter(|&i| columns[i] == name)
            .map(|i| (i + 1).to_string())
            .collect();
        if at.len() > 1 {
            return Err(DataError::format(
                path,
                format!(
                    "line 1: the column name {name:?} appears {} times (columns {}); name each column once",
                    at.len(),
                    at.join(", ")
                ),
            ));
        }
    }
    if label_col == text_col {
        return Err(DataError::format(
            path,
            "the label and text columns must differ",
        ));
    }
    let text_is_last = text_col == columns.len() - 1;
    let mut texts = Vec::new();
    let mut raw_labels = Vec::new();
    let mut label_lines = Vec::new();
    for (line, row) in lines {
        let fields: Vec<&str> = if text_is_last {
            row.splitn(columns.len(), '\t').collect()
        } else {
            row.split('\t').collect()
        };
        if fields.len() != columns.len() {
            return Err(DataError::RaggedRow {
                path: path.to_path_buf(),
                line,
                expected: columns.len(),
                found: fields.len(),
            });
        }
        let text = fields[text_col].trim();
        if text.is_empty() {
            return Err(DataError::format(path, format!("line {line}: empty text")));
        }
        texts.push(text.to_string());
        raw_labels.push(fields[label_col].trim().to_string());
        label_lines.push(line);
    }
    if texts.is_empty() {
        return Err(DataError::Empty {
            path: path.to_path_buf(),
            header_only: true,
        });
    }
    let (labels, class_names) = encode_labels(&raw_labels).map_err(|(i, message)| {
        DataError::format(path, format!("line {}: {message}", label_lines[i]))
    })?;
    TextDataset::new(texts, labels, class_names)
}

/// Parses TSV bytes (gzip allowed). Errors as [`parse`], plus [`DataError::Gzip`].
///
/// # Errors
///
/// As [`parse`], plus [`DataError::Gzip`] and non-UTF-8 text.
pub fn parse_bytes(path: &Path, raw: Vec<u8>) -> Result<TextDataset, DataError> {
    parse(path, &bytes_to_text(path, decode(path, raw)?)?)
}

/// Reads a TSV file (gzip allowed).
///
/// # Errors
///
/// [`DataError::Io`], [`DataError::Gzip`], and the errors of [`parse`].
pub fn read(path: &Path) -> Result<TextDataset, DataError> {
    read_columns(path, &Columns::default())
}

/// Reads a TSV file (gzip allowed) with the columns `columns` names.
///
/// # Errors
///
/// As [`read`] and [`parse_columns`].
pub fn read_columns(path: &Path, columns: &Columns) -> Result<TextDataset, DataError> {
    parse_columns(path, &read_text(path)?, columns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use assert_matches::assert_matches;

    /// The message of the error `text` gives when parsed as `t.tsv`.
    fn tsv_error(text: &str) -> String {
        parse(Path::new("t.tsv"), text).unwrap_err().to_string()
    }

    #[test]
    fn extra_columns_are_ignored_and_tabs_in_text_kept() {
        let text = "label\tsource\ttext\n1\ta\tgood\tstuff\n0\tb\tbad\n";
        let d = parse(Path::new("t.tsv"), text).unwrap();
        assert_eq!(d.texts(), &["good\tstuff".to_string(), "bad".to_string()]);
        assert_eq!(d.labels(), &[1, 0]);
    }

    #[test]
    fn named_columns_are_used_and_missing_ones_named() {
        let text = "sentiment\tbody\tnote\npos\tgood\tx\nneg\tbad\ty\n";
        let columns = Columns {
            text: Some("body".into()),
            label: Some("sentiment".into()),
        };
        let d = parse_columns(Path::new("t.tsv"), text, &columns).unwrap();
        assert_eq!(d.texts(), &["good".to_string(), "bad".to_string()]);
        assert_eq!(d.class_names(), &["neg".to_string(), "pos".to_string()]);
        let wrong = Columns {
            text: Some("review".into()),
            label: None,
        };
        let err = parse_columns(Path::new("t.tsv"), text, &wrong)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("t.tsv") && err.contains("\"review\"") && err.contains("body"),
            "{err}"
        );
    }

    #[test]
    fn a_repeated_column_name_is_refused_when_it_is_read() {
        for (text, columns, needle) in [
            (
                "label\ttext\ttext\n0\ta\tb\n",
                Columns::default(),
                "\"text\" appears 2 times (columns 2, 3)",
            ),
            (
                "label\ttext\tlabel\n0\ta\t1\n",
                Columns::default(),
                "\"label\" appears 2 times (columns 1, 3)",
            ),
            (
                "y\tbody\tbody\tbody\n0\ta\tb\tc\n",
                Columns {
                    text: Some("body".into()),
                    label: Some("y".into()),
                },
                "\"body\" appears 3 times (columns 2, 3, 4)",
            ),
        ] {
            let err = parse_columns(Path::new("t.tsv"), text, &columns)
                .unwrap_err()
                .to_string();
            assert!(err.contains("t.tsv") && err.contains(needle), "{err}");
        }
        // Repeats among the columns not read are harmless.
        let d = parse(
            Path::new("t.tsv"),
            "label\ttext\tnote\tnote\n0\ta\tx\ty\n1\tb\tx\ty\n",
        )
        .unwrap();
        assert_eq!(d.len(), 2);
    }

    #[test]
    fn a_stray_label_is_an_error_naming_its_line() {
        let err = tsv_error("label\ttext\n0\tgood\n1\tbad\n-1\tmeh\n");
        assert!(
            err.contains("t.tsv") && err.contains("line 4") && err.contains("\"-1\""),
            "{err}"
        );
    }

    #[test]
    fn short_row_is_ragged() {
        let err = parse(Path::new("t.tsv"), "label\tsource\ttext\n1\tonly\n").unwrap_err();
        assert_matches!(
            err,
            DataError::RaggedRow {
                line: 2,
                expected: 3,
                found: 2,
                ..
            }
        );
    }
}
