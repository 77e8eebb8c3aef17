//! Every reader, fed empty, truncated and corrupted files, returns a typed error naming the
//! file, never a panic.

use assert_matches::assert_matches;
use std::path::{Path, PathBuf};

use harden_data::csv::LabelColumn;
use harden_data::{DataError, cifar, csv, idx, tsv};

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn idx_images(n: u32, h: u32, w: u32) -> Vec<u8> {
    let mut b = idx::IMAGES_MAGIC.to_be_bytes().to_vec();
    for d in [n, h, w] {
        b.extend_from_slice(&d.to_be_bytes());
    }
    b.extend((0..n * h * w).map(|i| (i % 256) as u8));
    b
}

fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut b = idx::LABELS_MAGIC.to_be_bytes().to_vec();
    b.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    b.extend_from_slice(labels);
    b
}

fn assert_names_file(err: &DataError, path: &Path) {
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}

#[test]
fn idx_reader_rejects_empty_truncated_corrupted_and_mismatched_files() {
    let dir = tempfile::tempdir().unwrap();
    let good = idx_images(3, 2, 2);

    let empty = write(dir.path(), "empty", b"");
    let err = idx::read_images(&empty).unwrap_err();
    assert_matches!(err, DataError::Empty { .. });
    assert_names_file(&err, &empty);

    let short = write(dir.path(), "short", &good[..good.len() - 3]);
    let err = idx::read_images(&short).unwrap_err();
    assert_matches!(
        err,
        DataError::Truncated {
            expected: 28,
            found: 25,
            ..
        }
    );
    assert_names_file(&err, &short);

    let header_only = write(dir.path(), "header", &good[..6]);
    assert_matches!(
        idx::read_images(&header_only).unwrap_err(),
        DataError::Truncated {
            expected: 16,
            found: 6,
            ..
        }
    );

    let mut long = good.clone();
    long.push(0);
    let long = write(dir.path(), "long", &long);
    assert_matches!(
        idx::read_images(&long).unwrap_err(),
        DataError::TrailingBytes { extra: 1, .. }
    );

    let labels_as_images = write(dir.path(), "labels", &idx_labels(&[1, 2, 3]));
    let err = idx::read_images(&labels_as_images).unwrap_err();
    assert_matches!(
        err,
        DataError::BadMagic {
            found: 2049,
            expected: 2051,
            ..
        }
    );

    let mut gz = gzip(&good);
    gz.truncate(gz.len() / 2);
    let broken_gz = write(dir.path(), "broken.gz", &gz);
    let err = idx::read_images(&broken_gz).unwrap_err();
    assert_matches!(err, DataError::Gzip { .. });

    let images = write(dir.path(), "images.gz", &gzip(&good));
    // What the user reads names the counts, the line and the range.
    let message = |labels: &Path| {
        let err = idx::read_dataset(&images, labels, vec!["a".into(); 10]).unwrap_err();
        err.to_string()
    };
    let two = message(&write(dir.path(), "two", &idx_labels(&[1, 2])));
    assert!(
        two.contains("holds 3 samples") && two.contains("holds 2 labels"),
        "{two}"
    );
    let bad = message(&write(dir.path(), "bad-label", &idx_labels(&[1, 12, 3])));
    assert!(
        bad.contains("line 2: label \"12\" out of range") && bad.contains("0..10"),
        "{bad}"
    );

    let labels = write(dir.path(), "labels-ok", &idx_labels(&[1, 2, 3]));
    let d = idx::read_dataset(&images, &labels, vec!["a".into(); 10]).unwrap();
    assert_eq!(d.sample_shape(), &[1, 2, 2]);
    assert_eq!(d.sample(0), &[0.0, 1.0 / 255.0, 2.0 / 255.0, 3.0 / 255.0]);
}

#[test]
fn cifar_reader_rejects_empty_truncated_and_bad_labels() {
    let dir = tempfile::tempdir().unwrap();
    let empty = write(dir.path(), "empty.bin", b"");
    assert_matches!(cifar::read(&empty).unwrap_err(), DataError::Empty { .. });

    let mut record = vec![7u8];
    record.extend(std::iter::repeat_n(255u8, 3072));
    let mut two = record.clone();
    two.extend_from_slice(&record[..100]);
    let short = write(dir.path(), "short.bin", &two);
    let err = cifar::read(&short).unwrap_err();
    assert_matches!(
        err,
        DataError::Truncated {
            expected: 6146,
            found: 3173,
            ..
        }
    );
    assert_names_file(&err, &short);

    let mut bad = record.clone();
    bad[0] = 10;
    let bad = write(dir.path(), "bad.bin", &bad);
    assert_matches!(
        cifar::read(&bad).unwrap_err(),
        DataError::LabelOutOfRange { line: 1, .. }
    );

    let ok = write(dir.path(), "ok.bin", &record);
    let d = cifar::read(&ok).unwrap();
    assert_eq!(
        (d.len(), d.sample_shape(), d.labels()),
        (1, &[3, 32, 32][..], &[7][..])
    );
    assert_eq!(d.value_range(), Some((1.0, 1.0)));
}

#[test]
fn csv_reader_rejects_empty_ragged_non_numeric_and_bad_headers() {
    let dir = tempfile::tempdir().unwrap();
    let last = LabelColumn::Last;
    let empty = write(dir.path(), "empty.csv", b"");
    assert_matches!(
        csv::read(&empty, &last).unwrap_err(),
        DataError::Empty { .. }
    );
    let blank = write(dir.path(), "blank.csv", b"\n\n  \n");
    assert_matches!(
        csv::read(&blank, &last).unwrap_err(),
        DataError::Empty { .. }
    );

    let ragged = write(dir.path(), "ragged.csv", b"a,b,label\n1,2,0\n1,0\n");
    let err = csv::read(&ragged, &last).unwrap_err();
    assert_matches!(
        err,
        DataError::RaggedRow {
            line: 3,
            expected: 3,
            found: 2,
            ..
        }
    );
    assert_names_file(&err, &ragged);

    let nan = write(dir.path(), "nan.csv", b"1,2,0\n1,NaN,1\n");
    assert_matches!(
        csv::read(&nan, &last).unwrap_err(),
        DataError::NotNumeric {
            line: 2,
            column: 2,
            ..
        }
    );

    let declared = write(dir.path(), "declared.csv", b"3,2,a,b\n1,2,0\n3,4,1\n");
    let err = csv::read(&declared, &last).unwrap_err();
    assert!(
        err.to_string().contains("declares 3 samples, found 2"),
        "{err}"
    );

    let truncated_sklearn = write(dir.path(), "cut.csv", b"2,2,a,b\n1,2,0\n3,4");
    assert_matches!(
        csv::read(&truncated_sklearn, &last).unwrap_err(),
        DataError::RaggedRow { line: 3, .. }
    );

    let no_column = write(dir.path(), "named.csv", b"x,y\n1,2\n");
    let err = csv::read(&no_column, &LabelColumn::Named("class".into())).unwrap_err();
    assert!(
        err.to_string().contains("no column named \"class\""),
        "{err}"
    );

    let binary = write(dir.path(), "binary.csv", &[0xff, 0xfe, 0x00, 0x41]);
    assert_matches!(
        csv::read(&binary, &last).unwrap_err(),
        DataError::Format { .. }
    );

    let mut gz = gzip(b"1,2,0\n3,4,1\n");
    gz.truncate(12);
    let broken = write(dir.path(), "broken.csv.gz", &gz);
    assert_matches!(
        csv::read(&broken, &last).unwrap_err(),
        DataError::Gzip { .. }
    );

    let missing = dir.path().join("missing.csv");
    let err = csv::read(&missing, &last).unwrap_err();
    assert_matches!(err, DataError::Io { .. });
    assert_names_file(&err, &missing);
}

#[test]
fn tsv_reader_rejects_empty_ragged_and_headerless_files() {
    let dir = tempfile::tempdir().unwrap();
    let empty = write(dir.path(), "empty.tsv", b"");
    assert_matches!(tsv::read(&empty).unwrap_err(), DataError::Empty { .. });
    let header_only = write(dir.path(), "header.tsv", b"label\ttext\n");
    assert_matches!(
        tsv::read(&header_only).unwrap_err(),
        DataError::Empty { .. }
    );
    let one_column = write(dir.path(), "one.tsv", b"just some text\n");
    assert_matches!(
        tsv::read(&one_column).unwrap_err(),
        DataError::Format { .. }
    );
    let ragged = write(
        dir.path(),
        "ragged.tsv",
        b"label\tgroup\ttext\n1\tonly-two\n",
    );
    let err = tsv::read(&ragged).unwrap_err();
    assert_matches!(err, DataError::RaggedRow { line: 2, .. });
    assert_names_file(&err, &ragged);
    let binary = write(dir.path(), "binary.tsv", &[b'l', b'\t', 0xff, 0xfe]);
    assert_matches!(tsv::read(&binary).unwrap_err(), DataError::Format { .. });
}

#[test]
fn arbitrary_bytes_never_panic_any_reader() {
    let dir = tempfile::tempdir().unwrap();
    let mut seed = 0x1234_5678_u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let good_idx = idx_images(2, 3, 3);
    for round in 0..200 {
        let mut bytes = if round % 2 == 0 {
            good_idx.clone()
        } else {
            b"2,2,a,b\n1,2,0\n3,4,1\n".to_vec()
        };
        let cut = (next() as usize) % (bytes.len() + 1);
        bytes.truncate(cut);
        for _ in 0..(next() % 4) {
            if !bytes.is_empty() {
                let i = (next() as usize) % bytes.len();
                bytes[i] = next() as u8;
            }
        }
        let path = write(dir.path(), "fuzz", &bytes);
        let _ = idx::read_images(&path);
        let _ = idx::read_labels(&path);
        let _ = cifar::read(&path);
        let _ = csv::read(&path, &LabelColumn::Last);
        let _ = tsv::read(&path);
    }
}
