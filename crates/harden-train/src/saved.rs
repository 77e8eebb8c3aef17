//! Models a run reads besides the one it trains: the weights it starts from (`init`), a
//! distillation teacher and ensemble-AT surrogates.
//!
//! Each is named by a [`SavedModel`]: a run directory of `harden train` (its `best.bpk`, with
//! the architecture from its `config.json`), or `ARCH:FILE` (a weights file of a built-in
//! architecture, e.g. `small-cnn:teacher.safetensors`), or a bare weights file, read with the
//! architecture of the run itself.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use harden_model::{Classifier, Model, ModelConfig, ModelKind, ModelSpec, store};
use serde_with::{DeserializeFromStr, SerializeDisplay};

use crate::{TrainError, run_config};

/// A saved model: a run directory, `ARCH:FILE`, or a weights file; see the
/// [module docs](self). Serialised as that string.
#[derive(Debug, Clone, PartialEq, Eq, SerializeDisplay, DeserializeFromStr)]
pub struct SavedModel {
    /// The run directory or weights file.
    pub path: PathBuf,
    /// The architecture given with `ARCH:`, if any.
    pub kind: Option<ModelKind>,
}

impl FromStr for SavedModel {
    type Err = String;

    /// `DIR`, `FILE` or `ARCH:FILE` (the architecture by its CLI name).
    fn from_str(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Err("expected a run directory, a weights file or ARCH:FILE".to_string());
        }
        if let Some((arch, file)) = s.split_once(':')
            && let Ok(kind) = arch.parse::<ModelKind>()
        {
            return Ok(Self {
                path: PathBuf::from(file),
                kind: Some(kind),
            });
        }
        Ok(Self {
            path: PathBuf::from(s),
            kind: None,
        })
    }
}

impl fmt::Display for SavedModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            Some(kind) => write!(f, "{}:{}", kind.name(), self.path.display()),
            None => write!(f, "{}", self.path.display()),
        }
    }
}

impl SavedModel {
    /// The weights file and the architecture: a run directory's `best.bpk` and configured
    /// model, else the file with the `ARCH:` prefix's architecture or `own` (the run's).
    ///
    /// # Errors
    ///
    /// [`TrainError::Saved`] for a path that does not exist, or a run directory without a
    /// readable `config.json`.
    pub fn resolve(
        &self,
        what: &'static str,
        own: &ModelSpec,
    ) -> Result<(PathBuf, ModelSpec), TrainError> {
        let err = |message: String| TrainError::Saved {
            what,
            path: self.path.clone(),
            message,
        };
        if self.path.is_dir() {
            let config = run_config(&self.path).map_err(|e| err(e.to_string()))?;
            let spec = match self.kind {
                Some(kind) => kind.into(),
                None => config.model,
            };
            return Ok((self.path.join("best.bpk"), spec));
        }
        if !self.path.is_file() {
            return Err(err("no such run directory or weights file".to_string()));
        }
        let spec = self.kind.map_or_else(|| own.clone(), ModelSpec::from);
        Ok((self.path.clone(), spec))
    }

    /// Loads the model for samples of `sample_shape` with `outputs` logits, on `device`.
    ///
    /// # Errors
    ///
    /// As [`resolve`](Self::resolve), and [`TrainError::Saved`] when the architecture does not
    /// fit the data or the weights do not load into it.
    pub fn load(
        &self,
        what: &'static str,
        own: &ModelSpec,
        sample_shape: &[usize],
        outputs: usize,
        device: &Device,
    ) -> Result<Model, TrainError> {
        let (file, spec) = self.resolve(what, own)?;
        let err = |message: String| TrainError::Saved {
            what,
            path: self.path.clone(),
            message,
        };
        let config: ModelConfig = spec
            .config_for(sample_shape, outputs)
            .map_err(|e| err(e.to_string()))?;
        store::load(config.init(device), &file).map_err(|e| err(e.to_string()))
    }
}

/// The frozen models a run trains with besides its own: the teacher of `ard` and `rslad`,
/// the surrogates of `ensemble-at`.
#[derive(Debug, Clone, Default)]
pub struct Companions {
    /// The distillation teacher.
    pub teacher: Option<Frozen>,
    /// The ensemble-AT surrogates.
    pub surrogates: Vec<Frozen>,
}

impl Companions {
    /// Loads the teacher and surrogates `config` names, for samples of `sample_shape` with
    /// `outputs` logits, on `device` (a bare weights file is read with the run's own
    /// architecture).
    ///
    /// # Errors
    ///
    /// [`TrainError::Saved`] naming the model that cannot be loaded.
    pub fn load(
        config: &crate::TrainConfig,
        sample_shape: &[usize],
        outputs: usize,
        device: &Device,
    ) -> Result<Self, TrainError> {
        let load = |what: &'static str, saved: &SavedModel| -> Result<Frozen, TrainError> {
            let model = saved.load(what, &config.model, sample_shape, outputs, device)?;
            Ok(Frozen::new(saved.to_string(), model))
        };
        Ok(Self {
            teacher: config
                .teacher
                .as_ref()
                .map(|t| load("teacher", t))
                .transpose()?,
            surrogates: config
                .surrogates
                .iter()
                .map(|s| load("surrogates", s))
                .collect::<Result<_, _>>()?,
        })
    }
}

/// A model that does not train (teacher, surrogate), in evaluation mode, with one copy per
/// device it is asked for, so that every device of a distributed run reads its own.
#[derive(Clone)]
pub struct Frozen {
    name: String,
    copies: Arc<Mutex<Vec<(Device, Model)>>>,
}

impl fmt::Debug for Frozen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frozen").field("name", &self.name).finish()
    }
}

impl Frozen {
    /// `model` (moved out of autodiff and into evaluation mode), named `name` in messages.
    pub fn new(name: impl Into<String>, model: Model) -> Self {
        let model = model.valid();
        let device = model.devices().first().cloned().unwrap_or_default();
        Self {
            name: name.into(),
            copies: Arc::new(Mutex::new(vec![(device, model)])),
        }
    }

    /// The name given to [`new`](Self::new).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The model on `device` (copied there the first time).
    pub fn on(&self, device: &Device) -> Model {
        let mut copies = self.copies.lock().expect("frozen model lock");
        if let Some((_, m)) = copies.iter().find(|(d, _)| d == device) {
            return m.clone();
        }
        let model = copies[0].1.clone().to_device(device).valid();
        copies.push((device.clone(), model.clone()));
        model
    }

    /// The model on the device of `input` (without autodiff: the copy an attack
    /// differentiates through for input gradients).
    pub fn beside<const D: usize>(&self, input: &Tensor<D>) -> Model {
        self.on(&input.clone().detach().without_autodiff().device())
    }

    /// Logits of the clean batch `input` (any autodiff graph dropped), on its device.
    ///
    /// # Shapes
    ///
    /// - `input`: `[N, ...]`; output: `[N, K]`, without graph.
    pub fn logits<const D: usize>(&self, input: &Tensor<D>) -> Tensor<2> {
        let plain = input.clone().detach().without_autodiff();
        self.on(&plain.device()).logits(plain)
    }
}
