//! IDX files (the MNIST and Fashion-MNIST format), gzip-compressed or raw.
//!
//! An IDX file starts with two zero bytes, a type byte (`0x08` for unsigned bytes, the only
//! type these datasets use), the number of dimensions, then each dimension as a big-endian
//! `u32`, then the data. Images are magic `0x00000803` (2051) with dimensions `[N, H, W]`;
//! labels are magic `0x00000801` (2049) with dimension `[N]`.

use std::path::Path;

use crate::{ArrayDataset, DataError};

/// Magic number of an IDX file of `u8` images `[N, H, W]`.
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of `u8` labels `[N]`.
pub const LABELS_MAGIC: u32 = 0x0000_0801;

/// A decoded IDX array of unsigned bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// The dimensions from the header.
    pub dims: Vec<usize>,
    /// The values, row-major.
    pub data: Vec<u8>,
}

/// Parses an IDX byte buffer, requiring the given `magic` (which fixes type and rank).
///
/// `path` only names the source in errors.
///
/// # Errors
///
/// [`DataError::BadMagic`] for another magic number, [`DataError::Truncated`] when the header or
/// the data is shorter than declared, [`DataError::TrailingBytes`] when longer.
pub fn parse(
    path: &Path,
    bytes: &[u8],
    magic: u32,
    what: &'static str,
) -> Result<IdxArray, DataError> {
    let dims = parse_header(path, bytes, magic, what)?;
    let header = 4 + 4 * dims.len() as u64;
    // A corrupted header can declare up to u32::MAX^3 values: saturate rather than overflow;
    // any saturated value is far beyond the file length anyway.
    let data_len = dims
        .iter()
        .fold(1u64, |acc, &d| acc.saturating_mul(d as u64));
    let expected = header.saturating_add(data_len);
    let len = bytes.len() as u64;
    if len < expected {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            expected,
            found: len,
        });
    }
    if len > expected {
        return Err(DataError::TrailingBytes {
            path: path.to_path_buf(),
            expected,
            extra: len - expected,
        });
    }
    Ok(IdxArray {
        dims,
        data: bytes[header as usize..].to_vec(),
    })
}

/// Checks the magic number and decodes the dimensions of an IDX header at the start of `bytes`.
fn parse_header(
    path: &Path,
    bytes: &[u8],
    magic: u32,
    what: &'static str,
) -> Result<Vec<usize>, DataError> {
    let truncated = |expected: u64| DataError::Truncated {
        path: path.to_path_buf(),
        expected,
        found: bytes.len() as u64,
    };
    if bytes.len() < 4 {
        return Err(truncated(4));
    }
    let be = |o: usize| u32::from_be_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]);
    let found = be(0);
    if found != magic {
        return Err(DataError::BadMagic {
            path: path.to_path_buf(),
            found,
            expected: magic,
            what,
        });
    }
    let rank = (magic & 0xff) as usize;
    if bytes.len() < 4 + 4 * rank {
        return Err(truncated(4 + 4 * rank as u64));
    }
    Ok((0..rank).map(|d| be(4 + 4 * d) as usize).collect())
}

/// Opens `path` for reading, through a gzip decoder when it starts with the gzip magic.
fn open(path: &Path) -> Result<Box<dyn std::io::Read>, DataError> {
    use std::io::Read;
    let io = |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut start = [0u8; 2];
    let n = file.read(&mut start).map_err(io)?;
    let file = std::fs::File::open(path).map_err(io)?;
    Ok(if n == 2 && start == [0x1f, 0x8b] {
        Box::new(flate2::read::MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    })
}

/// Reads at most `limit` more bytes of `reader` into `into`.
fn read_up_to(
    path: &Path,
    reader: &mut dyn std::io::Read,
    limit: u64,
    into: &mut Vec<u8>,
) -> Result<(), DataError> {
    use std::io::Read;
    reader
        .take(limit)
        .read_to_end(into)
        .map_err(|source| DataError::Gzip {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(())
}

/// Reads the header at the start of `reader`: its bytes and the dimensions they declare.
fn read_header(
    path: &Path,
    reader: &mut dyn std::io::Read,
    magic: u32,
    what: &'static str,
) -> Result<(Vec<u8>, Vec<usize>), DataError> {
    let mut header = Vec::new();
    read_up_to(path, reader, 4 + 4 * u64::from(magic & 0xff), &mut header)?;
    if header.is_empty() {
        return Err(DataError::Empty {
            path: path.to_path_buf(),
            header_only: false,
        });
    }
    let dims = parse_header(path, &header, magic, what)?;
    Ok((header, dims))
}

/// Reads only the header of an IDX file (gzip or raw) and returns its dimensions, checking
/// the file's size against them without reading the data: a raw file's length, or the
/// uncompressed size a gzip file records in its last four bytes (modulo 2^32, as gzip stores
/// it); for listing datasets cheaply.
///
/// # Errors
///
/// [`DataError::Io`], [`DataError::Gzip`], [`DataError::BadMagic`], and
/// [`DataError::Truncated`] or [`DataError::TrailingBytes`] when the file's size disagrees
/// with its header.
pub fn peek_dims(path: &Path, magic: u32, what: &'static str) -> Result<Vec<usize>, DataError> {
    let (header, dims) = read_header(path, &mut *open(path)?, magic, what)?;
    let data_len = dims
        .iter()
        .fold(1u64, |acc, &d| acc.saturating_mul(d as u64));
    let expected = (header.len() as u64).saturating_add(data_len);
    let (found, matches) = match stored_size(path)? {
        StoredSize::Raw(len) => (len, len == expected),
        StoredSize::GzipModulo(len) => (u64::from(len), u64::from(len) == expected & 0xffff_ffff),
    };
    if matches {
        return Ok(dims);
    }
    Err(if found < expected {
        DataError::Truncated {
            path: path.to_path_buf(),
            expected,
            found,
        }
    } else {
        DataError::TrailingBytes {
            path: path.to_path_buf(),
            expected,
            extra: found - expected,
        }
    })
}

/// The size of a file's content as stored: a raw file's length, or what a gzip file records.
enum StoredSize {
    Raw(u64),
    GzipModulo(u32),
}

/// The stored size of `path`'s content (see [`StoredSize`]).
fn stored_size(path: &Path) -> Result<StoredSize, DataError> {
    use std::io::{Read, Seek, SeekFrom};
    let io = |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    let mut start = [0u8; 2];
    let n = file.read(&mut start).map_err(io)?;
    // 18 bytes: the smallest gzip member (10-byte header, 8-byte trailer).
    if n < 2 || start != [0x1f, 0x8b] || len < 18 {
        return Ok(StoredSize::Raw(len));
    }
    let mut stored = [0u8; 4];
    file.seek(SeekFrom::End(-4)).map_err(io)?;
    file.read_exact(&mut stored).map_err(io)?;
    Ok(StoredSize::GzipModulo(u32::from_le_bytes(stored)))
}

/// Reads an IDX file (gzip or raw) header first, then no more of its data than the header
/// declares (and one byte, to detect trailing data): a small compressed file whose
/// decompressed content dwarfs its header is never inflated in memory.
fn read_bounded(path: &Path, magic: u32, what: &'static str) -> Result<IdxArray, DataError> {
    let mut reader = open(path)?;
    let (mut bytes, dims) = read_header(path, &mut *reader, magic, what)?;
    let data_len = dims
        .iter()
        .fold(1u64, |acc, &d| acc.saturating_mul(d as u64));
    read_up_to(path, &mut *reader, data_len.saturating_add(1), &mut bytes)?;
    parse(path, &bytes, magic, what)
}

/// Reads an IDX image file (`[N, H, W]` of `u8`, gzip or raw).
///
/// # Errors
///
/// As [`parse`], plus [`DataError::Io`], [`DataError::Gzip`] and [`DataError::Empty`].
pub fn read_images(path: &Path) -> Result<IdxArray, DataError> {
    read_bounded(path, IMAGES_MAGIC, "IDX images [N, H, W] of u8")
}

/// Reads an IDX label file (`[N]` of `u8`, gzip or raw).
///
/// # Errors
///
/// As [`read_images`].
pub fn read_labels(path: &Path) -> Result<IdxArray, DataError> {
    read_bounded(path, LABELS_MAGIC, "IDX labels [N] of u8")
}

/// Reads an image file and its label file into a dataset of `[N, 1, H, W]` images in `[0, 1]`.
///
/// `class_names` gives the classes; every label must be below its length.
///
/// # Errors
///
/// Any error of [`read_images`] or [`read_labels`]; [`DataError::CountMismatch`] when the files
/// hold different numbers of samples; [`DataError::LabelOutOfRange`] for a label that is not a
/// class index.
pub fn read_dataset(
    images: &Path,
    labels: &Path,
    class_names: Vec<String>,
) -> Result<ArrayDataset, DataError> {
    let image_array = read_images(images)?;
    let label_array = read_labels(labels)?;
    let (n, h, w) = (
        image_array.dims[0],
        image_array.dims[1],
        image_array.dims[2],
    );
    if n != label_array.dims[0] {
        return Err(DataError::CountMismatch {
            images: images.to_path_buf(),
            n_images: n,
            labels: labels.to_path_buf(),
            n_labels: label_array.dims[0],
        });
    }
    if let Some(i) = label_array
        .data
        .iter()
        .position(|&l| l as usize >= class_names.len())
    {
        return Err(DataError::LabelOutOfRange {
            path: labels.to_path_buf(),
            line: i + 1,
            label: label_array.data[i].to_string(),
            num_classes: class_names.len(),
        });
    }
    let features = image_array
        .data
        .iter()
        .map(|&p| f32::from(p) / 255.0)
        .collect();
    let labels = label_array.data.iter().map(|&l| u32::from(l)).collect();
    ArrayDataset::new(features, vec![1, h, w], labels, class_names)
}

/// The IDX bytes of `data` (`u8` values, row-major) with dimensions `dims`: magic
/// `0x0000_08RR` (unsigned bytes, rank `RR`), one big-endian `u32` per dimension, then the data.
///
/// # Errors
///
/// [`DataError::InvalidArgument`] when `dims` is empty or has more than 255 entries, a
/// dimension does not fit in a `u32`, or `data.len()` is not the product of `dims`.
pub fn encode(dims: &[usize], data: &[u8]) -> Result<Vec<u8>, DataError> {
    let invalid = |message: String| DataError::InvalidArgument {
        what: "IDX array",
        message,
    };
    let rank = u8::try_from(dims.len())
        .ok()
        .filter(|&r| r > 0)
        .ok_or_else(|| invalid(format!("{} dimensions, expected 1 to 255", dims.len())))?;
    if dims.iter().product::<usize>() != data.len() {
        return Err(invalid(format!(
            "{} values for dimensions {dims:?}",
            data.len()
        )));
    }
    let mut bytes = vec![0, 0, 0x08, rank];
    for &d in dims {
        let d = u32::try_from(d)
            .map_err(|_| invalid(format!("dimension {d} does not fit in 32 bits")))?;
        bytes.extend_from_slice(&d.to_be_bytes());
    }
    bytes.extend_from_slice(data);
    Ok(bytes)
}

/// Writes `data` with dimensions `dims` as a raw IDX file at `path`, atomically (see
/// [`crate::atomic`]): images `[N, H, W]` or labels `[N]`, as MNIST stores them.
///
/// # Errors
///
/// As [`encode`], and [`DataError::Io`] naming `path` when it cannot be written.
pub fn write(path: &Path, dims: &[usize], data: &[u8]) -> Result<(), DataError> {
    let bytes = encode(dims, data)?;
    crate::atomic::write_bytes(path, &bytes).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use assert_matches::assert_matches;

    fn header(magic: u32, dims: &[u32]) -> Vec<u8> {
        let mut b = magic.to_be_bytes().to_vec();
        for d in dims {
            b.extend_from_slice(&d.to_be_bytes());
        }
        b
    }

    #[test]
    fn parses_a_valid_image_buffer() {
        let mut b = header(IMAGES_MAGIC, &[2, 2, 3]);
        b.extend(0..12u8);
        let a = parse(Path::new("x"), &b, IMAGES_MAGIC, "images").unwrap();
        assert_eq!(a.dims, vec![2, 2, 3]);
        assert_eq!(a.data, (0..12u8).collect::<Vec<_>>());
    }

    #[test]
    fn huge_declared_dimensions_are_truncation_not_allocation() {
        let b = header(IMAGES_MAGIC, &[u32::MAX, u32::MAX, u32::MAX]);
        let err = parse(Path::new("x"), &b, IMAGES_MAGIC, "images").unwrap_err();
        assert_matches!(err, DataError::Truncated { found: 16, .. });
    }

    #[test]
    fn written_files_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let images = dir.path().join("images-idx3-ubyte");
        let labels = dir.path().join("labels-idx1-ubyte");
        write(&images, &[2, 2, 3], &(0..12u8).collect::<Vec<_>>()).unwrap();
        write(&labels, &[2], &[1, 0]).unwrap();
        let read = read_images(&images).unwrap();
        assert_eq!(read.dims, vec![2, 2, 3]);
        assert_eq!(read.data, (0..12u8).collect::<Vec<_>>());
        let data = read_dataset(&images, &labels, vec!["a".into(), "b".into()]).unwrap();
        assert_eq!(data.labels(), &[1, 0]);
        assert!(encode(&[2, 2], &[0; 3]).is_err());
        assert!(encode(&[], &[]).is_err());
    }

    #[test]
    fn a_small_gzip_file_is_inflated_no_further_than_its_header_declares() {
        use std::io::Write;
        // The header declares 10 images of 28x28; the stream holds 64 MiB of zeros after it.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bomb-idx3-ubyte.gz");
        let mut gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&path).unwrap(),
            flate2::Compression::best(),
        );
        gz.write_all(&header(IMAGES_MAGIC, &[10, 28, 28])).unwrap();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..64 {
            gz.write_all(&zeros).unwrap();
        }
        gz.finish().unwrap();
        assert!(std::fs::metadata(&path).unwrap().len() < 1 << 20);
        let err = read_images(&path).unwrap_err();
        // One byte past the declared data is enough to know there is more.
        assert_matches!(err, DataError::TrailingBytes { extra: 1, .. });
    }

    #[test]
    fn peeking_checks_the_size_against_the_header() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = header(IMAGES_MAGIC, &[3, 2, 2]);
        bytes.extend([7u8; 12]);
        let raw = dir.path().join("raw");
        std::fs::write(&raw, &bytes).unwrap();
        assert_eq!(
            peek_dims(&raw, IMAGES_MAGIC, "images").unwrap(),
            vec![3, 2, 2]
        );
        std::fs::write(&raw, &bytes[..20]).unwrap();
        let err = peek_dims(&raw, IMAGES_MAGIC, "images").unwrap_err();
        assert_matches!(err, DataError::Truncated { found: 20, .. });
        for (content, ok) in [(&bytes[..], true), (&bytes[..22], false)] {
            let gz = dir.path().join("images.gz");
            let mut enc = flate2::write::GzEncoder::new(
                std::fs::File::create(&gz).unwrap(),
                flate2::Compression::default(),
            );
            enc.write_all(content).unwrap();
            enc.finish().unwrap();
            assert_eq!(peek_dims(&gz, IMAGES_MAGIC, "images").is_ok(), ok);
        }
    }

    #[test]
    fn wrong_magic_names_both_numbers() {
        let b = header(LABELS_MAGIC, &[1]);
        let err = parse(Path::new("f.idx"), &b, IMAGES_MAGIC, "images").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("f.idx") && msg.contains("0x00000801") && msg.contains("0x00000803"),
            "{msg}"
        );
    }
}
