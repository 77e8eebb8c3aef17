//! Tabular CSV files: sklearn-style and plain.
//!
//! - **sklearn-style**: the first line is `n_samples,n_features,class_name_0,class_name_1,...`,
//!   then `n_samples` rows of `n_features` numbers and an integer class index (the layout of
//!   scikit-learn's bundled `breast_cancer.csv`, `iris.csv`, `wine_data.csv`).
//! - **plain**: an optional header of column names, then rows of numbers with one label column,
//!   the last one or one named in the header. Labels that are all whole numbers from 0 are
//!   class indices; labels that hold no number are class names, numbered in sorted order; a
//!   column that mixes them is an error naming the first stray label's line.
//!
//! [`read`] tells the two apart from the first line. Gzip-compressed files are accepted.

use std::collections::BTreeSet;
use std::path::Path;

use crate::read::{bytes_to_text, decode, read_text};
use crate::{ArrayDataset, DataError};

/// Which column of a plain CSV holds the label.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum LabelColumn {
    /// The last column.
    #[default]
    Last,
    /// The column with this name in the header line.
    Named(String),
}

/// One non-blank CSV row with its 1-based line number.
struct Row {
    line: usize,
    fields: Vec<String>,
}

fn rows(path: &Path, text: &str) -> Result<Vec<Row>, DataError> {
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(::csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut out = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| DataError::format(path, format!("malformed CSV: {e}")))?;
        let line = record.position().map_or(0, |p| p.line() as usize);
        if record.iter().all(str::is_empty) {
            continue;
        }
        out.push(Row {
            line,
            fields: record.iter().map(str::to_string).collect(),
        });
    }
    if out.is_empty() {
        return Err(DataError::Empty {
            path: path.to_path_buf(),
            header_only: false,
        });
    }
    Ok(out)
}

fn number(path: &Path, row: &Row, column: usize) -> Result<f32, DataError> {
    let cell = &row.fields[column];
    match cell.parse::<f32>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(DataError::NotNumeric {
            path: path.to_path_buf(),
            line: row.line,
            column: column + 1,
            value: cell.clone(),
        }),
    }
}

fn is_number(cell: &str) -> bool {
    cell.parse::<f32>().is_ok_and(f32::is_finite)
}

/// Whether a first line is an sklearn-style header: two counts, then only class names.
fn is_sklearn_header(fields: &[String]) -> bool {
    fields.len() >= 3
        && fields[0].parse::<usize>().is_ok()
        && fields[1].parse::<usize>().is_ok()
        && fields[2..].iter().all(|f| !is_number(f))
}

fn check_width(path: &Path, row: &Row, expected: usize) -> Result<(), DataError> {
    if row.fields.len() != expected {
        return Err(DataError::RaggedRow {
            path: path.to_path_buf(),
            line: row.line,
            expected,
            found: row.fields.len(),
        });
    }
    Ok(())
}

/// Parses sklearn-style CSV text into a dataset of `[n_features]` rows.
///
/// # Errors
///
/// [`DataError::Format`] for a malformed header or a row count other than the declared
/// `n_samples`; [`DataError::RaggedRow`], [`DataError::NotNumeric`] and
/// [`DataError::LabelOutOfRange`] for bad rows; [`DataError::Empty`] for no rows.
pub fn parse_sklearn(path: &Path, text: &str) -> Result<ArrayDataset, DataError> {
    let rows = rows(path, text)?;
    let header = &rows[0];
    if !is_sklearn_header(&header.fields) {
        return Err(DataError::format(
            path,
            format!(
                "line {}: expected a header `n_samples,n_features,class names...`, found {:?}",
                header.line,
                header.fields.join(",")
            ),
        ));
    }
    let n_samples: usize = header.fields[0].parse().unwrap_or(0);
    let n_features: usize = header.fields[1].parse().unwrap_or(0);
    let class_names: Vec<String> = header.fields[2..].to_vec();
    if n_features == 0 {
        return Err(DataError::format(path, "header declares 0 features"));
    }
    let body = &rows[1..];
    if body.len() != n_samples {
        return Err(DataError::format(
            path,
            format!(
                "header declares {n_samples} samples, found {} data rows",
                body.len()
            ),
        ));
    }
    let mut features = Vec::with_capacity(n_samples * n_features);
    let mut labels = Vec::with_capacity(n_samples);
    for row in body {
        check_width(path, row, n_features + 1)?;
        for c in 0..n_features {
            features.push(number(path, row, c)?);
        }
        let cell = &row.fields[n_features];
        match cell.parse::<u32>() {
            Ok(l) if (l as usize) < class_names.len() => labels.push(l),
            _ => {
                return Err(DataError::LabelOutOfRange {
                    path: path.to_path_buf(),
                    line: row.line,
                    label: cell.clone(),
                    num_classes: class_names.len(),
                });
            }
        }
    }
    ArrayDataset::new(features, vec![n_features], labels, class_names)
}

/// Parses plain CSV text (optional header, one label column) into a dataset of `[F]` rows.
///
/// The first line is a header when any of its cells is not a number. A [`LabelColumn::Named`]
/// label needs a header.
///
/// # Errors
///
/// [`DataError::Format`] when the named label column is missing, there is no feature column
/// or a label strays from the others; [`DataError::RaggedRow`] and [`DataError::NotNumeric`]
/// for bad rows; [`DataError::Empty`] for no data rows (`header_only` when a header stands
/// alone).
pub fn parse_plain(
    path: &Path,
    text: &str,
    label: &LabelColumn,
) -> Result<ArrayDataset, DataError> {
    let rows = rows(path, text)?;
    let has_header = rows[0].fields.iter().any(|f| !is_number(f));
    let width = rows[0].fields.len();
    let label_col = match label {
        LabelColumn::Last => width - 1,
        LabelColumn::Named(name) => {
            if !has_header {
                return Err(DataError::format(
                    path,
                    format!("label column {name:?} requested but the file has no header line"),
                ));
            }
            rows[0]
                .fields
                .iter()
                .position(|f| f == name)
                .ok_or_else(|| {
                    DataError::format(
                        path,
                        format!(
                            "no column named {name:?} in the header (columns: {})",
                            rows[0].fields.join(", ")
                        ),
                    )
                })?
        }
    };
    if width < 2 {
        return Err(DataError::format(
            path,
            "expected at least one feature column and a label column",
        ));
    }
    let body = &rows[usize::from(has_header)..];
    if body.is_empty() {
        return Err(DataError::Empty {
            path: path.to_path_buf(),
            header_only: true,
        });
    }
    let n_features = width - 1;
    let mut features = Vec::with_capacity(body.len() * n_features);
    let mut raw_labels = Vec::with_capacity(body.len());
    for row in body {
        check_width(path, row, width)?;
        for c in (0..width).filter(|&c| c != label_col) {
            features.push(number(path, row, c)?);
        }
        raw_labels.push(row.fields[label_col].clone());
    }
    let (labels, class_names) = encode_labels(&raw_labels).map_err(|(i, message)| {
        DataError::format(path, format!("line {}: {message}", body[i].line))
    })?;
    ArrayDataset::new(features, vec![n_features], labels, class_names)
}

/// Class indices from a label column stay below this (a larger number is not an index).
const MAX_CLASS_INDEX: u32 = 1_000_000;

/// Turns label cells into class indices and class names.
///
/// All whole numbers from 0 below a million: used as indices, classes `0..=max` named by their
/// number. No numbers at all: the distinct labels in sorted order are the class names.
///
/// # Errors
///
/// The position of the first offending label and what is wrong with it when numbers mix with
/// other labels (`-1`, `1.5` or `1e9` among indices, a number among names): one stray value
/// would otherwise turn every index of the column into a class name.
pub(crate) fn encode_labels(raw: &[String]) -> Result<(Vec<u32>, Vec<String>), (usize, String)> {
    let index = |s: &str| s.parse::<u32>().ok().filter(|&l| l < MAX_CLASS_INDEX);
    let indices: Vec<Option<u32>> = raw.iter().map(|s| index(s)).collect();
    if let Some(labels) = indices.iter().copied().collect::<Option<Vec<u32>>>() {
        let n = labels.iter().max().map_or(0, |&m| m as usize + 1);
        return Ok((labels, (0..n).map(|i| i.to_string()).collect()));
    }
    let is_number = |s: &str| s.parse::<f64>().is_ok();
    if !raw.iter().any(|s| is_number(s)) {
        let names: Vec<String> = raw
            .iter()
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let labels = raw
            .iter()
            .map(|s| names.binary_search(s).unwrap_or(0) as u32)
            .collect();
        return Ok((labels, names));
    }
    let n_indices = indices.iter().filter(|i| i.is_some()).count();
    if 2 * n_indices >= raw.len() {
        let i = indices.iter().position(Option::is_none).unwrap_or(0);
        Err((
            i,
            format!(
                "label {:?} is not a class index (a whole number from 0 to {}) like the other labels of the column",
                raw[i],
                MAX_CLASS_INDEX - 1
            ),
        ))
    } else {
        let i = raw.iter().position(|s| is_number(s)).unwrap_or(0);
        Err((
            i,
            format!(
                "label {:?} is a number among class names; use names or class indices throughout",
                raw[i]
            ),
        ))
    }
}

/// Parses CSV bytes (gzip allowed), sklearn-style or plain, as [`read`] does for a file.
///
/// # Errors
///
/// As [`parse_sklearn`] or [`parse_plain`], plus [`DataError::Gzip`] and non-UTF-8 text.
pub fn parse_bytes(
    path: &Path,
    raw: Vec<u8>,
    label: &LabelColumn,
) -> Result<ArrayDataset, DataError> {
    let text = bytes_to_text(path, decode(path, raw)?)?;
    parse_text(path, &text, label)
}

fn parse_text(path: &Path, text: &str, label: &LabelColumn) -> Result<ArrayDataset, DataError> {
    let first: Vec<String> = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .map(|l| l.split(',').map(|f| f.trim().to_string()).collect())
        .unwrap_or_default();
    if is_sklearn_header(&first) && *label == LabelColumn::Last {
        parse_sklearn(path, text)
    } else {
        parse_plain(path, text, label)
    }
}

/// Reads a CSV file (gzip allowed), sklearn-style or plain, telling them apart by the first line.
///
/// # Errors
///
/// [`DataError::Io`], [`DataError::Gzip`], [`DataError::Empty`], and the errors of
/// [`parse_sklearn`] or [`parse_plain`].
pub fn read(path: &Path, label: &LabelColumn) -> Result<ArrayDataset, DataError> {
    let text = read_text(path)?;
    parse_text(path, &text, label)
}

#[cfg(test)]
mod tests {
    use super::*;
    use assert_matches::assert_matches;

    /// `text` parsed as `t.csv` with the label in the last column.
    fn csv(text: &str) -> Result<ArrayDataset, DataError> {
        parse_text(Path::new("t.csv"), text, &LabelColumn::Last)
    }

    #[test]
    fn sklearn_header_is_recognised() {
        let d = csv("2,2,a,b\n1,2,0\n3,4,1\n").unwrap();
        assert_eq!(d.features(), &[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(d.labels(), &[0, 1]);
        assert_eq!(d.class_names(), &["a".to_string(), "b".to_string()]);
    }

    #[test]
    fn plain_csv_with_named_string_label() {
        let text = "species,x,y\nb,1,2\na,3,4\nb,5,6\n";
        let species = LabelColumn::Named("species".into());
        let d = parse_text(Path::new("t.csv"), text, &species).unwrap();
        assert_eq!(d.features(), &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(d.labels(), &[1, 0, 1]);
        assert_eq!(d.class_names(), &["a".to_string(), "b".to_string()]);
    }

    #[test]
    fn headerless_plain_csv_uses_last_column() {
        let d = csv("1,2,0\n3,4,2\n").unwrap();
        assert_eq!(d.num_classes(), 3);
        assert_eq!(d.labels(), &[0, 2]);
    }

    #[test]
    fn a_stray_label_among_indices_or_names_is_an_error_naming_its_line() {
        // Indices with one value that is not an index: negative, fractional, too large.
        for stray in ["-1", "1.5", "1e9", "1000000", "cat"] {
            let text = format!("x,label\n1,0\n2,1\n3,{stray}\n4,1\n");
            let err = csv(&text).unwrap_err().to_string();
            assert!(
                err.contains("t.csv")
                    && err.contains("line 4")
                    && err.contains(&format!("{stray:?}"))
                    && err.contains("not a class index"),
                "{stray}: {err}"
            );
        }
        // Names with one number among them.
        let err = csv("x,label\n1,cat\n2,dog\n3,2\n").unwrap_err().to_string();
        assert!(
            err.contains("line 4") && err.contains("a number among class names"),
            "{err}"
        );
        // Names alone and indices alone are still read.
        let names = csv("x,y\n1,b\n2,a\n").unwrap();
        assert_eq!(names.labels(), &[1, 0]);
        let indices = csv("1,1\n2,0\n").unwrap();
        assert_eq!(indices.labels(), &[1, 0]);
    }

    #[test]
    fn a_header_without_rows_is_named_as_such() {
        let err = csv("x,y,label\n").unwrap_err().to_string();
        assert!(
            err.contains("t.csv") && err.contains("no data rows"),
            "{err}"
        );
        let err = crate::tsv::parse(Path::new("t.tsv"), "label\ttext\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("t.tsv") && err.contains("no data rows"),
            "{err}"
        );
    }

    #[test]
    fn non_numeric_cell_names_line_and_column() {
        let err = csv("x,y,label\n1,2,0\n3,oops,1\n").unwrap_err();
        assert_matches!(err, DataError::NotNumeric { line: 3, column: 2, ref value, .. } if value == "oops");
    }

    #[test]
    fn sklearn_label_out_of_range() {
        let err = csv("1,1,a,b\n0.5,7\n").unwrap_err();
        assert_matches!(
            err,
            DataError::LabelOutOfRange {
                line: 2,
                num_classes: 2,
                ..
            }
        );
    }
}
