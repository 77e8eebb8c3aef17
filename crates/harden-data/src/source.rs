//! The dataset names harden accepts, and how each is loaded into train and test splits.
//!
//! | name | samples | origin |
//! |---|---|---|
//! | `digits` | 1797 images `[1, 8, 8]`, 10 classes | embedded |
//! | `breast-cancer` | 569 rows `[30]`, 2 classes | embedded |
//! | `mnist` | 60000 + 10000 images `[1, 28, 28]` | `<data-dir>/mnist/` |
//! | `fashion-mnist` | 60000 + 10000 images `[1, 28, 28]` | `<data-dir>/fashion-mnist/` |
//! | `csv:PATH` | rows `[F]` | a CSV file ([`crate::csv`]) |
//! | `tsv:PATH` | texts | a TSV file ([`crate::tsv`]) |
//!
//! Datasets without a published test split (`digits`, `breast-cancer`, `csv:`, `tsv:`) are
//! split with [`stratified_split`] holding out [`TEST_FRACTION`] of each class, with the fixed
//! seed [`TEST_SPLIT_SEED`], so every run and every tool sees the same test samples. Tabular
//! datasets are min-max scaled with a [`MinMaxScaler`] fitted on the training split.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::split::stratified_split;
use crate::{ArrayDataset, DataError, MinMaxScaler, TextDataset, embedded, idx, tsv};

/// Share of each class held out as the test split of datasets that have no published one.
pub const TEST_FRACTION: f64 = 0.2;
/// Seed of the held-out test split of datasets that have no published one.
pub const TEST_SPLIT_SEED: u64 = 0x5eed;

/// Environment variable naming the folder that holds `mnist/`, `fashion-mnist/`, ...
pub const DATA_DIR_ENV: &str = "HARDEN_DATA_DIR";

/// A dataset harden can load, by the name the CLI accepts. Configuration files and reports
/// hold it as that name (`"digits"`, `"csv:data/x.csv"`), parsed by the same [`FromStr`].
#[derive(
    Debug, Clone, PartialEq, Eq, serde_with::SerializeDisplay, serde_with::DeserializeFromStr,
)]
pub enum DatasetSource {
    /// UCI digits 8x8, embedded.
    Digits,
    /// Wisconsin diagnostic breast cancer, embedded.
    BreastCancer,
    /// MNIST from `<data-dir>/mnist/`.
    Mnist,
    /// Fashion-MNIST from `<data-dir>/fashion-mnist/`.
    FashionMnist,
    /// A CSV file, sklearn-style or plain with the label in the last column.
    Csv(PathBuf),
    /// A text TSV file.
    Tsv(PathBuf),
}

impl FromStr for DatasetSource {
    type Err = DataError;

    fn from_str(name: &str) -> Result<Self, DataError> {
        let path = |p: &str| -> Result<PathBuf, DataError> {
            if p.is_empty() {
                Err(DataError::UnknownDataset {
                    name: name.to_string(),
                })
            } else {
                Ok(PathBuf::from(p))
            }
        };
        match name {
            "digits" => Ok(Self::Digits),
            "breast-cancer" => Ok(Self::BreastCancer),
            "mnist" => Ok(Self::Mnist),
            "fashion-mnist" => Ok(Self::FashionMnist),
            _ => match name.split_once(':') {
                Some(("csv", p)) => Ok(Self::Csv(path(p)?)),
                Some(("tsv", p)) => Ok(Self::Tsv(path(p)?)),
                _ => Err(DataError::UnknownDataset {
                    name: name.to_string(),
                }),
            },
        }
    }
}

impl fmt::Display for DatasetSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Digits => f.write_str("digits"),
            Self::BreastCancer => f.write_str("breast-cancer"),
            Self::Mnist => f.write_str("mnist"),
            Self::FashionMnist => f.write_str("fashion-mnist"),
            Self::Csv(p) => write!(f, "csv:{}", p.display()),
            Self::Tsv(p) => write!(f, "tsv:{}", p.display()),
        }
    }
}

/// Sizes of a dataset, for listings such as `harden info`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Samples in the training split.
    pub train: usize,
    /// Samples in the test split.
    pub test: usize,
    /// Shape of one sample (empty for texts).
    pub sample_shape: Vec<usize>,
    /// Number of classes.
    pub num_classes: usize,
}

/// Train and test splits of an array dataset, with the scaler applied to both (if any).
#[derive(Debug, Clone)]
pub struct Splits {
    /// The training split.
    pub train: ArrayDataset,
    /// The test split.
    pub test: ArrayDataset,
    /// The scaler fitted on `train` and applied to both splits, for tabular data.
    pub scaler: Option<MinMaxScaler>,
}

/// The built-in names, in the order `harden info` lists them.
pub const BUILT_IN: [DatasetSource; 4] = [
    DatasetSource::Digits,
    DatasetSource::BreastCancer,
    DatasetSource::Mnist,
    DatasetSource::FashionMnist,
];

const MNIST_FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

const FASHION_CLASSES: [&str; 10] = [
    "t-shirt/top",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle boot",
];

/// What a dataset file held when a run was trained on it: its size and SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Fingerprint {
    /// The file, as the run named it.
    pub path: PathBuf,
    /// Size in bytes.
    pub bytes: u64,
    /// SHA-256 of the contents, lower-case hex.
    pub sha256: String,
}

impl Fingerprint {
    /// The fingerprint of the file at `path`.
    ///
    /// # Errors
    ///
    /// [`DataError::Io`] when the file cannot be read.
    pub fn of(path: &Path) -> Result<Self, DataError> {
        use sha2::Digest;
        let io = |source| DataError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = std::fs::File::open(path).map_err(io)?;
        let mut hasher = sha2::Sha256::new();
        let bytes = std::io::copy(&mut file, &mut hasher).map_err(io)?;
        let sha256 = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(Self {
            path: path.to_path_buf(),
            bytes,
            sha256,
        })
    }

    /// Checks that the file at [`path`](Self::path) still holds what it held; `run` names the
    /// run in the error.
    ///
    /// # Errors
    ///
    /// [`DataError::Format`] naming the file when its contents changed, [`DataError::Io`] when
    /// it cannot be read.
    pub fn verify(&self, run: &Path) -> Result<(), DataError> {
        let now = Self::of(&self.path)?;
        if now.sha256 == self.sha256 {
            return Ok(());
        }
        Err(DataError::format(
            &self.path,
            format!(
                "changed since {} was trained on it ({} bytes, sha256 {}..., now {} bytes, sha256 {}...): its test split would not be the run's; use the file it was trained on",
                run.display(),
                self.bytes,
                &self.sha256[..12],
                now.bytes,
                &now.sha256[..12]
            ),
        ))
    }
}

impl DatasetSource {
    /// The fingerprint of the file this dataset reads (`csv:` and `tsv:`); `None` for the
    /// embedded datasets and the folders of MNIST and Fashion-MNIST.
    ///
    /// # Errors
    ///
    /// [`DataError::Io`] when the file cannot be read.
    pub fn fingerprint(&self) -> Result<Option<Fingerprint>, DataError> {
        match self {
            Self::Csv(path) | Self::Tsv(path) => Fingerprint::of(path).map(Some),
            _ => Ok(None),
        }
    }

    /// Whether the dataset is compiled into the crate.
    pub fn is_embedded(&self) -> bool {
        matches!(self, Self::Digits | Self::BreastCancer)
    }

    /// Whether the dataset is read from the data folder (`--data-dir`): MNIST and
    /// Fashion-MNIST.
    pub fn reads_data_dir(&self) -> bool {
        matches!(self, Self::Mnist | Self::FashionMnist)
    }

    /// Whether the dataset holds texts (load it with [`load_text`](Self::load_text)).
    pub fn is_text(&self) -> bool {
        matches!(self, Self::Tsv(_))
    }

    /// The folder under a data directory that holds an IDX dataset, if it is one.
    fn idx_folder(&self) -> Option<&'static str> {
        match self {
            Self::Mnist => Some("mnist"),
            Self::FashionMnist => Some("fashion-mnist"),
            _ => None,
        }
    }

    /// Finds `<data_dir>/<folder>/<stem>.gz`, or the uncompressed `<stem>`.
    fn idx_file(&self, data_dir: &Path, stem: &str) -> Result<PathBuf, DataError> {
        let folder = data_dir.join(self.idx_folder().unwrap_or_default());
        let gz = folder.join(format!("{stem}.gz"));
        let raw = folder.join(stem);
        if gz.is_file() {
            Ok(gz)
        } else if raw.is_file() {
            Ok(raw)
        } else {
            Err(DataError::Missing {
                name: self.to_string(),
                path: gz,
            })
        }
    }

    /// Whether the dataset's files can be found (embedded ones always can).
    pub fn is_available(&self, data_dir: &Path) -> bool {
        match self {
            Self::Digits | Self::BreastCancer => true,
            Self::Mnist | Self::FashionMnist => MNIST_FILES
                .iter()
                .all(|stem| self.idx_file(data_dir, stem).is_ok()),
            Self::Csv(p) | Self::Tsv(p) => p.is_file(),
        }
    }

    /// The dataset's sizes. IDX datasets are sized from their headers alone.
    ///
    /// # Errors
    ///
    /// As [`load`](Self::load) and [`load_text`](Self::load_text).
    pub fn summary(&self, data_dir: &Path) -> Result<Summary, DataError> {
        if self.idx_folder().is_some() {
            let dims = |i: usize, magic, what| {
                idx::peek_dims(&self.idx_file(data_dir, MNIST_FILES[i])?, magic, what)
            };
            let train = dims(0, idx::IMAGES_MAGIC, "IDX images")?;
            let test = dims(2, idx::IMAGES_MAGIC, "IDX images")?;
            return Ok(Summary {
                train: train[0],
                test: test[0],
                sample_shape: vec![1, train[1], train[2]],
                num_classes: 10,
            });
        }
        if self.is_text() {
            let (train, test) = self.load_text()?;
            return Ok(Summary {
                train: train.len(),
                test: test.len(),
                sample_shape: Vec::new(),
                num_classes: train.num_classes(),
            });
        }
        let s = self.load(data_dir)?;
        Ok(Summary {
            train: s.train.len(),
            test: s.test.len(),
            sample_shape: s.train.sample_shape().to_vec(),
            num_classes: s.train.num_classes(),
        })
    }

    /// Loads an array dataset (images or tabular rows) as train and test splits.
    ///
    /// `data_dir` is only read for `mnist` and `fashion-mnist`.
    ///
    /// # Errors
    ///
    /// [`DataError::Missing`] when the files are not there, any reader error, and
    /// [`DataError::InvalidArgument`] for a text dataset.
    pub fn load(&self, data_dir: &Path) -> Result<Splits, DataError> {
        match self {
            Self::Digits => held_out(embedded::digits(), false),
            Self::BreastCancer => held_out(embedded::breast_cancer(), true),
            Self::Csv(path) => held_out(crate::csv::read(path, &Default::default())?, true),
            Self::Mnist | Self::FashionMnist => {
                let names = self.class_names();
                let f = |stem| self.idx_file(data_dir, stem);
                let train =
                    idx::read_dataset(&f(MNIST_FILES[0])?, &f(MNIST_FILES[1])?, names.clone())?;
                let test = idx::read_dataset(&f(MNIST_FILES[2])?, &f(MNIST_FILES[3])?, names)?;
                Ok(Splits {
                    train,
                    test,
                    scaler: None,
                })
            }
            Self::Tsv(_) => Err(DataError::InvalidArgument {
                what: "dataset",
                message: format!("{self} holds texts; it needs a text model"),
            }),
        }
    }

    /// The test split alone, with the scaler fitted on the training split for tabular data:
    /// what evaluation needs. IDX datasets read only their test files; the others are split
    /// exactly as [`load`](Self::load) splits them.
    ///
    /// # Errors
    ///
    /// As [`load`](Self::load).
    pub fn load_test(
        &self,
        data_dir: &Path,
    ) -> Result<(ArrayDataset, Option<MinMaxScaler>), DataError> {
        match self {
            Self::Mnist | Self::FashionMnist => {
                let f = |stem| self.idx_file(data_dir, stem);
                let test = idx::read_dataset(
                    &f(MNIST_FILES[2])?,
                    &f(MNIST_FILES[3])?,
                    self.class_names(),
                )?;
                Ok((test, None))
            }
            _ => {
                let splits = self.load(data_dir)?;
                Ok((splits.test, splits.scaler))
            }
        }
    }

    /// The class names of an IDX dataset (digits for MNIST, garment names for Fashion-MNIST).
    fn class_names(&self) -> Vec<String> {
        match self {
            Self::FashionMnist => FASHION_CLASSES.iter().map(|s| s.to_string()).collect(),
            _ => (0..10).map(|d| d.to_string()).collect(),
        }
    }

    /// Loads a text dataset as `(train, test)` splits.
    ///
    /// # Errors
    ///
    /// Any reader error, and [`DataError::InvalidArgument`] for a dataset that is not text.
    pub fn load_text(&self) -> Result<(TextDataset, TextDataset), DataError> {
        self.load_text_columns(&tsv::Columns::default())
    }

    /// Loads a text dataset as `(train, test)` splits, reading the columns `columns` names.
    ///
    /// # Errors
    ///
    /// As [`load_text`](Self::load_text).
    pub fn load_text_columns(
        &self,
        columns: &tsv::Columns,
    ) -> Result<(TextDataset, TextDataset), DataError> {
        match self {
            Self::Tsv(path) => {
                let all = tsv::read_columns(path, columns)?;
                let (train, test) = stratified_split(all.labels(), TEST_FRACTION, TEST_SPLIT_SEED)?;
                Ok((all.subset(&train), all.subset(&test)))
            }
            _ => Err(DataError::InvalidArgument {
                what: "dataset",
                message: format!("{self} is not a text dataset"),
            }),
        }
    }
}

/// Holds out the fixed test split of `all`; for tabular data fits and applies a scaler.
fn held_out(all: ArrayDataset, scale: bool) -> Result<Splits, DataError> {
    let (train_idx, test_idx) = stratified_split(all.labels(), TEST_FRACTION, TEST_SPLIT_SEED)?;
    let mut train = all.subset(&train_idx);
    let mut test = all.subset(&test_idx);
    let scaler = if scale {
        let scaler = MinMaxScaler::fit(&train)?;
        scaler.transform(&mut train)?;
        scaler.transform(&mut test)?;
        Some(scaler)
    } else {
        None
    };
    Ok(Splits {
        train,
        test,
        scaler,
    })
}

/// The data directory to use when none is given: `$HARDEN_DATA_DIR`, else `./data`.
pub fn default_data_dir() -> PathBuf {
    std::env::var_os(DATA_DIR_ENV).map_or_else(|| PathBuf::from("data"), PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_errors() {
        for name in [
            "digits",
            "breast-cancer",
            "mnist",
            "fashion-mnist",
            "csv:a/b.csv",
            "tsv:t.tsv",
        ] {
            assert_eq!(name.parse::<DatasetSource>().unwrap().to_string(), name);
        }
        for bad in ["cifar", "csv:", "xls:foo", ""] {
            let err = bad.parse::<DatasetSource>().unwrap_err();
            assert!(err.to_string().contains("expected digits"), "{err}");
        }
    }

    #[test]
    fn embedded_tabular_split_is_scaled_on_train_only() {
        let s = DatasetSource::BreastCancer
            .load(Path::new("/nonexistent"))
            .unwrap();
        assert_eq!(s.train.len() + s.test.len(), 569);
        // round(212 * 0.2) + round(357 * 0.2) held out.
        assert_eq!(s.test.len(), 42 + 71);
        assert_eq!(s.train.value_range(), Some((0.0, 1.0)));
        let (lo, hi) = s.test.value_range().unwrap();
        assert!(lo >= 0.0 && hi <= 1.0);
        assert_eq!(s.scaler.unwrap().num_features(), 30);
    }

    #[test]
    fn missing_idx_dataset_names_the_file_and_the_flag() {
        let err = DatasetSource::Mnist
            .load(Path::new("/nonexistent"))
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("/nonexistent/mnist/train-images-idx3-ubyte.gz")
                && msg.contains("--data-dir"),
            "{msg}"
        );
    }
}
