//! Saving and loading weights: burnpack (`.bpk`) and PyTorch-layout safetensors.
//!
//! Files are written atomically: to a temporary file in the same folder, then renamed over the
//! target, so a run killed mid-write never leaves a half-written model behind.
//!
//! ## PyTorch layout
//!
//! `.safetensors` files hold the weights under the names and layouts of the equivalent PyTorch
//! `nn.Sequential` (linear weights transposed to `[out, in]` by burn-store's
//! `BurnToPyTorchAdapter`; convolution weights are `[out, in, kh, kw]` in both):
//!
//! | model | PyTorch module | burn -> PyTorch names |
//! |---|---|---|
//! | `Mlp` (hidden `h1..hk`) | `Sequential(Flatten(), Linear, ReLU(), ..., Linear)` | `layers.{k}.*` -> `{1+2k}.*` |
//! | `SmallCnn` | `Sequential(Conv2d(c,16,4,2,1), ReLU(), Conv2d(16,32,4,2,1), ReLU(), Flatten(), Linear(32*h*w,100), ReLU(), Linear(100,n))` | `conv1` -> `0`, `conv2` -> `2`, `fc1` -> `5`, `fc2` -> `7` |
//! | `MadryCnn` | `Sequential(Conv2d(c,32,5,padding=2), ReLU(), MaxPool2d(2), Conv2d(32,64,5,padding=2), ReLU(), MaxPool2d(2), Flatten(), Linear(64*h*w,1024), ReLU(), Linear(1024,n))` | `conv1` -> `0`, `conv2` -> `3`, `fc1` -> `7`, `fc2` -> `9` |
//!
//! So `model.load_state_dict(safetensors.torch.load_file(path))` works on that `Sequential`.
//! The other way, a `state_dict` of that `Sequential` loads into the harden model, from
//! `.safetensors` or from `torch.save`'s `.pt` / `.pth` (through burn-store's `PytorchStore`).

use std::path::Path;

use burn::module::{Module, ModuleDisplay};
use burn::store::{
    ApplyResult, BurnToPyTorchAdapter, BurnpackStore, FloatCastAdapter, ModuleAdapter,
    ModuleSnapshot, PyTorchToBurnAdapter, PytorchStore, SafetensorsStore,
};
use burn::tensor::DType;

use crate::{Classifier, ModelError};

/// A weights file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightsFormat {
    /// burn's burnpack format (`.bpk`), burn's own names and layouts.
    Burnpack,
    /// safetensors in PyTorch names and layouts (`.safetensors`).
    PytorchSafetensors,
    /// A PyTorch `state_dict` saved by `torch.save` (`.pt`, `.pth`); read only.
    PytorchPickle,
}

impl WeightsFormat {
    /// The format a file name implies: `.bpk` or `.safetensors`.
    ///
    /// # Errors
    ///
    /// [`ModelError::Load`] for any other extension.
    pub fn from_path(path: &Path) -> Result<Self, ModelError> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("bpk") => Ok(Self::Burnpack),
            Some("safetensors") => Ok(Self::PytorchSafetensors),
            Some("pt" | "pth") => Ok(Self::PytorchPickle),
            _ => Err(ModelError::Load {
                path: path.to_path_buf(),
                message: "unknown weights format: expected a .bpk, .safetensors, .pt or .pth file"
                    .to_string(),
            }),
        }
    }

    /// The file extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Burnpack => "bpk",
            Self::PytorchSafetensors => "safetensors",
            Self::PytorchPickle => "pt",
        }
    }
}

/// burn-name prefix patterns to PyTorch-name prefixes (`to_pytorch`) or back.
fn prefix_patterns(names: &[(String, String)], to_pytorch: bool) -> Vec<(String, String)> {
    names
        .iter()
        .cloned()
        .map(|(burn, torch)| {
            let (from, to) = if to_pytorch {
                (burn, torch)
            } else {
                (torch, burn)
            };
            (format!("^{}", regex_escape(&from)), to)
        })
        .collect()
}

/// `s` as a regular expression matching itself: every character but ASCII letters, digits and
/// `_` escaped.
pub(crate) fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                vec![c]
            } else {
                vec!['\\', c]
            }
        })
        .collect()
}

/// Saves `model`'s weights (any [`Classifier`]) to `path` in `format`, atomically, replacing
/// any existing file. safetensors files use the model's
/// [`pytorch_names`](Classifier::pytorch_names).
///
/// # Errors
///
/// [`ModelError::Save`] when the file cannot be written, or for
/// [`WeightsFormat::PytorchPickle`] (write `.safetensors` for PyTorch instead).
pub fn save<M: Classifier>(
    model: &M,
    path: &Path,
    format: WeightsFormat,
) -> Result<(), ModelError> {
    save_module(model, &model.pytorch_names(), path, format)
}

/// Saves any burn module as [`save`] does, with `pytorch_names` (burn-name prefixes to
/// PyTorch-name prefixes) for safetensors files.
///
/// # Errors
///
/// As [`save`].
pub fn save_module<M: Module + ModuleDisplay>(
    model: &M,
    pytorch_names: &[(String, String)],
    path: &Path,
    format: WeightsFormat,
) -> Result<(), ModelError> {
    if format == WeightsFormat::PytorchPickle {
        return Err(ModelError::Save {
            path: path.to_path_buf(),
            source: "harden reads .pt files but does not write them; write .safetensors, which \
                     PyTorch loads with safetensors.torch.load_file"
                .into(),
        });
    }
    let written = crate::atomic::write_with(path, |tmp| -> Result<(), BoxError> {
        match format {
            WeightsFormat::Burnpack => {
                let mut store = BurnpackStore::from_file(tmp)
                    .auto_extension(false)
                    .overwrite(true);
                Ok(model.save_into(&mut store)?)
            }
            WeightsFormat::PytorchPickle => unreachable!("refused above"),
            WeightsFormat::PytorchSafetensors => {
                let mut store = SafetensorsStore::from_file(tmp)
                    .overwrite(true)
                    .skip_enum_variants(true)
                    .with_to_adapter(BurnToPyTorchAdapter);
                for (from, to) in prefix_patterns(pytorch_names, true) {
                    store = store.with_key_remapping(from, to);
                }
                Ok(model.save_into(&mut store)?)
            }
        }
    });
    written.map_err(|source| ModelError::Save {
        path: path.to_path_buf(),
        source,
    })
}

/// Any error of writing a weights file, kept as the source of [`ModelError::Save`].
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Loads weights from `path` (format from its extension) into `model` (any [`Classifier`]),
/// which must have the architecture the weights were saved from.
///
/// # Errors
///
/// [`ModelError::Load`] when the file is missing or unreadable, [`ModelError::Mismatch`] when
/// its tensors do not match the model (names each missing, unexpected or wrongly shaped one).
pub fn load<M: Classifier>(model: M, path: &Path) -> Result<M, ModelError> {
    let names = model.pytorch_names();
    load_module(model, &names, path)
}

/// Loads weights into any burn module as [`load`] does, with `pytorch_names` as in
/// [`save_module`].
///
/// # Errors
///
/// As [`load`].
pub fn load_module<M: Module + ModuleDisplay>(
    mut model: M,
    pytorch_names: &[(String, String)],
    path: &Path,
) -> Result<M, ModelError> {
    let format = WeightsFormat::from_path(path)?;
    let load_err = |message: String| ModelError::Load {
        path: path.to_path_buf(),
        message,
    };
    if !path.is_file() {
        return Err(load_err("no such file".to_string()));
    }
    // Each store has its own error type; their messages are what the user needs.
    let result = match format {
        WeightsFormat::Burnpack => {
            let mut store = BurnpackStore::from_file(path)
                .auto_extension(false)
                .validate(false)
                .allow_partial(true)
                .with_from_adapter(FloatCastAdapter::to(DType::F32));
            model.load_from(&mut store).map_err(|e| e.to_string())
        }
        WeightsFormat::PytorchSafetensors => {
            let store = SafetensorsStore::from_file(path)
                .validate(false)
                .allow_partial(true)
                .skip_enum_variants(true)
                .with_from_adapter(PyTorchToBurnAdapter.chain(FloatCastAdapter::to(DType::F32)));
            let mut store = prefix_patterns(pytorch_names, false)
                .into_iter()
                .fold(store, |s, (from, to)| s.with_key_remapping(from, to));
            model.load_from(&mut store).map_err(|e| e.to_string())
        }
        WeightsFormat::PytorchPickle => {
            // Names stay as written (the Sequential indices are remapped below), so burn-store's
            // renumbering of gaps in indices is turned off.
            let store = PytorchStore::from_file(path)
                .validate(false)
                .allow_partial(true)
                .map_indices_contiguous(false);
            let mut store = prefix_patterns(pytorch_names, false)
                .into_iter()
                .fold(store, |s, (from, to)| s.with_key_remapping(from, to));
            model.load_from(&mut store).map_err(|e| e.to_string())
        }
    }
    .map_err(load_err)?;
    check_applied(path, &result)?;
    check_values(path, &model)?;
    Ok(model)
}

/// Checks the loaded weights: every float tensor `F32` (burnpack and safetensors files of
/// another float type were cast on load, as PyTorch's `load_state_dict` does; burn-store's `.pt`
/// reader cannot cast) and every value finite.
fn check_values<M: Module>(path: &Path, model: &M) -> Result<(), ModelError> {
    let refuse = |message: String| ModelError::Load {
        path: path.to_path_buf(),
        message,
    };
    for tensor in model.collect(None, None, true) {
        if !tensor.dtype.is_float() {
            continue;
        }
        if tensor.dtype != DType::F32 {
            return Err(refuse(format!(
                "tensor {} is {:?}, and harden's models hold F32 weights: save the state_dict as float32 (in PyTorch: {{k: v.float() for k, v in state_dict.items()}})",
                tensor.name, tensor.dtype
            )));
        }
        let bytes = tensor
            .to_bytes()
            .map_err(|e| refuse(format!("tensor {}: {e}", tensor.name)))?;
        let bad = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .position(|v| !v.is_finite());
        if let Some(index) = bad {
            return Err(refuse(format!(
                "tensor {} holds a NaN or infinite value (element {index}); a model with such weights cannot be evaluated",
                tensor.name
            )));
        }
    }
    Ok(())
}

/// Turns an incomplete or inconsistent application of weights into [`ModelError::Mismatch`].
fn check_applied(path: &Path, result: &ApplyResult) -> Result<(), ModelError> {
    check_applied_where(path, result, |_| true)
}

/// [`check_applied`], counting as missing only the tensors `expected` names.
pub(crate) fn check_applied_where(
    path: &Path,
    result: &ApplyResult,
    expected: impl Fn(&str) -> bool,
) -> Result<(), ModelError> {
    let mut problems: Vec<String> = result.errors.iter().map(|e| e.to_string()).collect();
    problems.extend(
        result
            .missing
            .iter()
            .filter(|(p, _)| expected(p))
            .map(|(p, _)| format!("missing tensor {p}")),
    );
    problems.extend(
        result
            .unused
            .iter()
            .map(|p| format!("unexpected tensor {p}")),
    );
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ModelError::Mismatch {
            path: path.to_path_buf(),
            details: problems.join("; "),
        })
    }
}
