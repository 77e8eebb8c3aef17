//! The input files of `harden predict`, read as a stream of batches.
//!
//! - Texts: one text per line, or a TSV with a header whose text column is the run's (the
//!   `.tsv` extension, or `--input-format tsv`). Lines stream: memory holds one batch.
//! - Table rows: comma-separated raw feature values, one row per line, an optional header
//!   line. Lines stream.
//! - Images: PNG files, IDX image files (MNIST's layout, gzip allowed) or CIFAR-10 binary
//!   files, each read whole, pixel values divided by 255.
//!
//! Gzip-compressed text and rows are read as well. A bad line stops the reading with an error
//! that names the file and the line.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use harden_data::{cifar, idx};

/// Bytes of a line that are read; the rest of a longer line is skipped. A text model reads at
/// most its `--max-len` tokens, far fewer than this.
pub const LINE_CAP: usize = 1 << 20;

/// How a file's lines are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InputFormat {
    /// By the run's kind and the file's name: `.tsv` files as TSV, other text as lines.
    Auto,
    /// One text per line.
    Lines,
    /// A TSV file with a header line; the run's text column is read.
    Tsv,
}

/// An input: a file, or standard input (`-`).
#[derive(Debug, Clone)]
pub enum Source {
    /// Standard input.
    Stdin,
    /// A file.
    File(PathBuf),
}

impl Source {
    /// `-` is standard input.
    pub fn of(path: &Path) -> Self {
        if path.as_os_str() == "-" {
            Self::Stdin
        } else {
            Self::File(path.to_path_buf())
        }
    }

    /// The name errors use.
    pub fn name(&self) -> String {
        match self {
            Self::Stdin => "standard input".to_string(),
            Self::File(p) => p.display().to_string(),
        }
    }

    /// Whether the source is a TSV file by its name (`.tsv`, `.tsv.gz`).
    fn is_tsv(&self) -> bool {
        match self {
            Self::Stdin => false,
            Self::File(p) => {
                let name = p.to_string_lossy().to_lowercase();
                name.ends_with(".tsv") || name.ends_with(".tsv.gz")
            }
        }
    }

    /// A buffered reader of the content, gzip decompressed when it starts with gzip's magic;
    /// `progress` wraps a file's bytes.
    fn open(&self, progress: &indicatif::ProgressBar) -> Result<Box<dyn BufRead>> {
        let raw: Box<dyn Read> = match self {
            Self::Stdin => Box::new(std::io::stdin()),
            Self::File(p) => {
                let file = File::open(p).with_context(|| format!("cannot read {}", p.display()))?;
                if let Ok(m) = file.metadata() {
                    progress.set_length(m.len());
                }
                Box::new(progress.wrap_read(file))
            }
        };
        let mut reader = BufReader::with_capacity(1 << 16, raw);
        let gzip = reader
            .fill_buf()
            .with_context(|| format!("cannot read {}", self.name()))?
            .starts_with(&[0x1f, 0x8b]);
        Ok(if gzip {
            Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(reader)))
        } else {
            Box::new(reader)
        })
    }
}

/// Reads the next line of `reader` into `buf` without its line ending, keeping at most
/// [`LINE_CAP`] bytes of it. Returns `false` at the end of the input.
fn next_line(reader: &mut dyn BufRead, buf: &mut Vec<u8>) -> std::io::Result<bool> {
    buf.clear();
    let mut any = false;
    loop {
        let chunk = reader.fill_buf()?;
        if chunk.is_empty() {
            break;
        }
        any = true;
        let (take, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        let room = LINE_CAP.saturating_sub(buf.len());
        buf.extend_from_slice(&chunk[..take.min(room)]);
        reader.consume(take);
        if done {
            break;
        }
    }
    while matches!(buf.last(), Some(b'\n' | b'\r')) {
        buf.pop();
    }
    Ok(any)
}

/// `bytes` as UTF-8; a line cut at [`LINE_CAP`] in the middle of a character loses that
/// character. `at` names the line in errors.
fn utf8<'a>(bytes: &'a [u8], at: &dyn Fn() -> String) -> Result<&'a str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(s),
        Err(e) if e.error_len().is_none() && bytes.len() >= LINE_CAP => {
            Ok(std::str::from_utf8(&bytes[..e.valid_up_to()]).expect("valid prefix"))
        }
        Err(e) => bail!(
            "{}: not UTF-8 text (invalid byte at column {})",
            at(),
            e.valid_up_to() + 1
        ),
    }
}

/// Streams the texts of `source`, `batch` at a time, to `f`.
///
/// `column` is the run's text column (`None`: `text`, else the last), read when the source is
/// a TSV file.
///
/// # Errors
///
/// The first unreadable line (not UTF-8, an empty text, a TSV row without the text column),
/// naming the source and the line, or `f`'s error.
pub fn texts(
    source: &Source,
    format: InputFormat,
    column: Option<&str>,
    batch: usize,
    progress: &indicatif::ProgressBar,
    mut f: impl FnMut(Vec<String>) -> Result<()>,
) -> Result<()> {
    let tsv = match format {
        InputFormat::Tsv => true,
        InputFormat::Lines => false,
        InputFormat::Auto => source.is_tsv(),
    };
    let mut reader = source.open(progress)?;
    let name = source.name();
    let mut buf = Vec::new();
    let mut line = 0usize;
    // (index of the text column, number of columns) of a TSV file.
    let mut layout: Option<(usize, usize)> = None;
    if tsv {
        line += 1;
        if !next_line(&mut *reader, &mut buf).with_context(|| format!("cannot read {name}"))? {
            bail!("{name}: empty file; a TSV file starts with a header line");
        }
        let header = utf8(&buf, &|| format!("{name}: line 1"))?;
        let columns: Vec<&str> = header.split('\t').map(str::trim).collect();
        let index = match column {
            Some(c) => columns.iter().position(|h| *h == c).with_context(|| {
                format!(
                    "{name}: line 1: no column named {c:?} (the run's text column); the header has {}",
                    columns.join(", ")
                )
            })?,
            None => columns
                .iter()
                .position(|h| *h == "text")
                .unwrap_or(columns.len() - 1),
        };
        layout = Some((index, columns.len()));
    }
    let mut texts = Vec::with_capacity(batch);
    while next_line(&mut *reader, &mut buf).with_context(|| format!("cannot read {name}"))? {
        line += 1;
        let at = || format!("{name}: line {line}");
        let row = utf8(&buf, &at)?;
        let text = match layout {
            None => row,
            Some((index, count)) => {
                let fields: Vec<&str> = if index == count - 1 {
                    row.splitn(count, '\t').collect()
                } else {
                    row.split('\t').collect()
                };
                match fields.get(index) {
                    Some(&t) if fields.len() == count => t,
                    _ => bail!(
                        "{}: expected {count} tab-separated fields as in the header, found {}",
                        at(),
                        fields.len()
                    ),
                }
            }
        };
        let text = text.trim();
        if text.is_empty() {
            bail!("{}: empty text; there is nothing to classify", at());
        }
        texts.push(text.to_string());
        if texts.len() == batch {
            f(std::mem::take(&mut texts))?;
        }
    }
    if line == 0 || (tsv && line == 1) {
        bail!("{name}: no input to classify");
    }
    if !texts.is_empty() {
        f(texts)?;
    }
    Ok(())
}

/// Streams the table rows of `source`, `batch` rows at a time as `batch * features` raw
/// values, to `f`. A first line in which no value is a number is a header and is skipped.
///
/// # Errors
///
/// The first bad line (another number of values than `features`, a value that is not a
/// finite number, not UTF-8), naming the source, the line and the column, or `f`'s error.
pub fn rows(
    source: &Source,
    features: usize,
    batch: usize,
    progress: &indicatif::ProgressBar,
    mut f: impl FnMut(Vec<f32>) -> Result<()>,
) -> Result<()> {
    let mut reader = source.open(progress)?;
    let name = source.name();
    let mut buf = Vec::new();
    let mut line = 0usize;
    let mut read = 0usize;
    let mut values = Vec::with_capacity(batch * features);
    while next_line(&mut *reader, &mut buf).with_context(|| format!("cannot read {name}"))? {
        line += 1;
        let at = || format!("{name}: line {line}");
        if buf.len() >= LINE_CAP {
            bail!(
                "{}: longer than {LINE_CAP} bytes; not a row of {features} numbers",
                at()
            );
        }
        let row = utf8(&buf, &at)?;
        let fields: Vec<&str> = row
            .split(',')
            .map(|f| f.trim().trim_matches('"').trim())
            .collect();
        let parsed: Vec<Option<f32>> = fields
            .iter()
            .map(|f| f.parse::<f32>().ok().filter(|x| x.is_finite()))
            .collect();
        if line == 1 && parsed.iter().all(Option::is_none) {
            // A header line: a name for each column, none a number.
            continue;
        }
        if fields.len() != features {
            bail!(
                "{}: {} comma-separated values; this model reads {features} features (without the label)",
                at(),
                fields.len()
            );
        }
        for (column, (p, text)) in parsed.iter().zip(&fields).enumerate() {
            match p {
                Some(x) => values.push(*x),
                None => bail!(
                    "{}, column {}: {text:?} is not a finite number",
                    at(),
                    column + 1
                ),
            }
        }
        read += 1;
        if read.is_multiple_of(batch) {
            f(std::mem::take(&mut values))?;
        }
    }
    if read == 0 {
        bail!("{name}: no row to classify");
    }
    if !values.is_empty() {
        f(values)?;
    }
    Ok(())
}

/// The images of `path` as `N * prod(shape)` values in `[0, 1]`, for a model that reads
/// images of `shape` (`[C, H, W]`).
///
/// # Errors
///
/// A file that is not PNG, IDX images or CIFAR-10 binary, or holds images of another size or
/// channel count than `shape`, naming the file.
pub fn images(path: &Path, shape: [usize; 3]) -> Result<Vec<f32>> {
    let [c, h, w] = shape;
    let name = path.display();
    let mut head = [0u8; 8];
    let n = File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .with_context(|| format!("cannot read {name}"))?;
    let head = &head[..n];
    if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        return png(path, shape);
    }
    let idx_magic = idx::IMAGES_MAGIC.to_be_bytes();
    if head.starts_with(&[0x1f, 0x8b]) || head.starts_with(&idx_magic) {
        let array = idx::read_images(path)?;
        let (ih, iw) = (array.dims[1], array.dims[2]);
        if [1, ih, iw] != shape {
            bail!(
                "{name}: {} images of {ih}x{iw} with 1 channel; this model reads {h}x{w} images with {c} channel(s)",
                array.dims[0]
            );
        }
        return Ok(array.data.iter().map(|&b| f32::from(b) / 255.0).collect());
    }
    let len = std::fs::metadata(path)
        .with_context(|| format!("cannot read {name}"))?
        .len();
    if len > 0 && len.is_multiple_of(cifar::RECORD_LEN as u64) {
        if shape != [3, 32, 32] {
            bail!(
                "{name}: CIFAR-10 images are 32x32 with 3 channels; this model reads {h}x{w} images with {c} channel(s)"
            );
        }
        return Ok(cifar::read(path)?.features().to_vec());
    }
    bail!("{name}: not a PNG file, IDX image file or CIFAR-10 binary file")
}

/// One PNG image in `[0, 1]`, converted to the model's channels: colour to grey by ITU-R
/// BT.601 luma, grey to colour by repetition, alpha dropped.
fn png(path: &Path, [c, h, w]: [usize; 3]) -> Result<Vec<f32>> {
    let name = path.display();
    let file = File::open(path).with_context(|| format!("cannot read {name}"))?;
    let mut decoder = png::Decoder::new(BufReader::new(file));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder
        .read_info()
        .with_context(|| format!("{name}: not a readable PNG file"))?;
    let (iw, ih) = reader.info().size();
    let (iw, ih) = (iw as usize, ih as usize);
    if (ih, iw) != (h, w) {
        bail!("{name}: the image is {ih}x{iw}; this model reads {h}x{w} images");
    }
    let size = reader
        .output_buffer_size()
        .with_context(|| format!("{name}: image too large"))?;
    let mut buf = vec![0u8; size];
    let info = reader
        .next_frame(&mut buf)
        .with_context(|| format!("{name}: not a readable PNG file"))?;
    let stride = info.color_type.samples();
    let pixels = &buf[..info.buffer_size()];
    let mut out = vec![0.0f32; c * h * w];
    for y in 0..h {
        for x in 0..w {
            let p = &pixels[y * info.line_size + x * stride..][..stride];
            let rgb = if stride >= 3 {
                [p[0], p[1], p[2]]
            } else {
                [p[0]; 3]
            };
            let at = y * w + x;
            if c == 1 {
                let luma = if stride >= 3 {
                    0.299 * f32::from(rgb[0])
                        + 0.587 * f32::from(rgb[1])
                        + 0.114 * f32::from(rgb[2])
                } else {
                    f32::from(rgb[0])
                };
                out[at] = luma / 255.0;
            } else {
                for (k, v) in rgb.iter().enumerate().take(c) {
                    out[k * h * w + at] = f32::from(*v) / 255.0;
                }
            }
        }
    }
    Ok(out)
}
