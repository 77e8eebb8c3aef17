//! Choosing a compute device by name.
//!
//! harden runs on whichever burn backends the build compiled in (cargo features `flex`,
//! `ndarray`, `wgpu`, `cuda`, `cpu`). [`parse_device`] maps a name to a burn [`Device`]:
//!
//! | name | device |
//! |---|---|
//! | `auto` | the best compiled-in device that answers: CUDA, then a wgpu GPU, then flex, then ndarray |
//! | `flex` | burn's pure-Rust CPU backend (the CPU default) |
//! | `ndarray` | burn's ndarray CPU backend |
//! | `wgpu`, `wgpu:N` | the default wgpu adapter, or the N-th one wgpu lists |
//! | `cuda`, `cuda:N` | CUDA device 0, or N |
//! | `cpu` | burn's CubeCL CPU backend |
//!
//! GPU devices are opened and run a tiny computation before they are returned, so a missing
//! driver or card is an error here rather than a crash later.

use burn::tensor::{Device, Tensor};

/// Why a device name could not be turned into a working device.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    /// The name is not a device name harden knows.
    #[error("unknown device {name:?}: expected auto, flex, ndarray, wgpu[:N], cuda[:N] or cpu")]
    Unknown {
        /// The name given.
        name: String,
    },
    /// The backend exists but this build of harden does not include it.
    #[error(
        "device {name:?} is not compiled into this build: rebuild with the cargo feature `{feature}` (`--features {feature}`); compiled in: {available}"
    )]
    NotCompiled {
        /// The name given.
        name: String,
        /// The cargo feature that adds the backend.
        feature: &'static str,
        /// The backends this build has, comma-separated.
        available: String,
    },
    /// The backend is compiled in but the device does not answer (no driver, no card).
    #[error("device {name:?} is not available: {reason}; compiled in: {available}")]
    Unavailable {
        /// The name given.
        name: String,
        /// What went wrong when opening it.
        reason: String,
        /// The backends this build has, comma-separated.
        available: String,
    },
}

/// Every backend harden knows, in `auto`'s order of preference, with whether this build has
/// it. Each backend's cargo feature has the backend's name, in every harden crate.
const BACKENDS: [(&str, bool); 5] = [
    ("cuda", cfg!(feature = "cuda")),
    ("wgpu", cfg!(feature = "wgpu")),
    ("flex", cfg!(feature = "flex")),
    ("ndarray", cfg!(feature = "ndarray")),
    ("cpu", cfg!(feature = "cpu")),
];

/// The backends compiled into this build, in `auto`'s order of preference.
pub fn compiled_backends() -> Vec<&'static str> {
    BACKENDS
        .iter()
        .filter(|(_, compiled)| *compiled)
        .map(|(name, _)| *name)
        .collect()
}

/// The backends this build lacks, each also the name of the cargo feature that adds it
/// (`cargo build --release -p harden-cli --features wgpu`).
pub fn missing_backends() -> Vec<&'static str> {
    BACKENDS
        .iter()
        .filter(|(_, compiled)| !*compiled)
        .map(|(name, _)| *name)
        .collect()
}

fn available() -> String {
    let backends = compiled_backends();
    if backends.is_empty() {
        "none".to_string()
    } else {
        backends.join(", ")
    }
}

/// Splits `wgpu:1` into `("wgpu", Some(1))`.
fn split_index(name: &str) -> Result<(&str, Option<usize>), DeviceError> {
    match name.split_once(':') {
        None => Ok((name, None)),
        Some((base, index)) => index
            .parse::<usize>()
            .map(|i| (base, Some(i)))
            .map_err(|_| DeviceError::Unknown {
                name: name.to_string(),
            }),
    }
}

/// Maps a device name (see the [module docs](self)) to a working [`Device`] without autodiff.
///
/// # Errors
///
/// [`DeviceError::Unknown`] for a name harden does not know, [`DeviceError::NotCompiled`] for
/// a backend this build lacks, [`DeviceError::Unavailable`] for a GPU that does not answer.
pub fn parse_device(name: &str) -> Result<Device, DeviceError> {
    let name = name.trim();
    let (base, index) = split_index(name)?;
    let not_compiled = |feature| DeviceError::NotCompiled {
        name: name.to_string(),
        feature,
        available: available(),
    };
    let no_index = |device: Result<Device, DeviceError>| match index {
        Some(_) => Err(DeviceError::Unknown {
            name: name.to_string(),
        }),
        None => device,
    };
    match base {
        "auto" => no_index(auto()),
        "flex" => no_index(flex().ok_or_else(|| not_compiled("flex"))),
        "ndarray" => no_index(ndarray().ok_or_else(|| not_compiled("ndarray"))),
        "cpu" => no_index(cubecl_cpu().ok_or_else(|| not_compiled("cpu"))),
        "wgpu" => wgpu(index)
            .ok_or_else(|| not_compiled("wgpu"))?
            .and_then(|d| checked(name, d)),
        "cuda" => cuda(index.unwrap_or(0))
            .ok_or_else(|| not_compiled("cuda"))?
            .and_then(|d| checked(name, d)),
        _ => Err(DeviceError::Unknown {
            name: name.to_string(),
        }),
    }
}

/// Parses a comma-separated device list such as `flex,flex` or `cuda:0,cuda:1`.
///
/// # Errors
///
/// The first error of [`parse_device`], or [`DeviceError::Unknown`] for an empty list.
pub fn parse_devices(list: &str) -> Result<Vec<Device>, DeviceError> {
    let names: Vec<&str> = list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if names.is_empty() {
        return Err(DeviceError::Unknown {
            name: list.to_string(),
        });
    }
    names.into_iter().map(parse_device).collect()
}

fn auto() -> Result<Device, DeviceError> {
    if let Some(Ok(device)) = cuda(0)
        && checked("cuda", device.clone()).is_ok()
    {
        return Ok(device);
    }
    if let Some(Ok(device)) = wgpu(None)
        && is_hardware_gpu(&device)
        && checked("wgpu", device.clone()).is_ok()
    {
        return Ok(device);
    }
    flex()
        .or_else(ndarray)
        .or_else(cubecl_cpu)
        .or_else(|| wgpu(None).and_then(Result::ok))
        .ok_or_else(|| DeviceError::Unavailable {
            name: "auto".to_string(),
            reason: "no backend is compiled in".to_string(),
            available: available(),
        })
}

/// Whether a wgpu device is a real GPU rather than a software rasteriser (lavapipe,
/// SwiftShader), which `auto` should not prefer over the flex CPU backend: cubecl reports
/// no physical card behind a software device.
#[cfg(feature = "wgpu")]
fn is_hardware_gpu(device: &Device) -> bool {
    let probe = device.clone();
    std::panic::catch_unwind(move || probe.identity().is_some_and(|id| id.physical.is_some()))
        .unwrap_or(false)
}
#[cfg(not(feature = "wgpu"))]
fn is_hardware_gpu(_device: &Device) -> bool {
    false
}

/// A one-line description of a device for listings: the adapter's name for GPUs (marked
/// "software" for a software rasteriser), the backend otherwise.
pub fn describe(device: &Device) -> String {
    #[cfg(any(feature = "wgpu", feature = "cuda", feature = "cpu"))]
    {
        let probe = device.clone();
        if let Ok(Some(id)) = std::panic::catch_unwind(move || probe.identity()) {
            let kind = if id.physical.is_some() {
                ""
            } else {
                " (software)"
            };
            return format!("{}{kind}", id.name);
        }
    }
    let debug = format!("{device:?}");
    let backend = ["Flex", "NdArray", "Cpu"]
        .into_iter()
        .find(|b| debug.contains(&format!("{b}(")));
    match backend {
        Some(b) => format!("{} (CPU, {} threads)", b.to_lowercase(), cpu_threads()),
        None => debug,
    }
}

/// Threads of the CPU backends' pool: `RAYON_NUM_THREADS` if set, else the available cores.
pub fn cpu_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Runs a tiny computation on `device`; a panic inside the backend becomes an error.
fn checked(name: &str, device: Device) -> Result<Device, DeviceError> {
    let probe = device.clone();
    let result = catch_backend_panic(move || {
        let t = Tensor::<1>::from_floats([1.0, 2.0], &probe);
        (t.clone() + t).into_data().try_to_vec::<f32>().ok()
    });
    match result {
        Ok(Some(v)) if v == [2.0, 4.0] => Ok(device),
        Ok(_) => Err(DeviceError::Unavailable {
            name: name.to_string(),
            reason: "a test computation returned a wrong result".to_string(),
            available: available(),
        }),
        Err(reason) => Err(DeviceError::Unavailable {
            name: name.to_string(),
            reason,
            available: available(),
        }),
    }
}

/// Runs `f`, turning a panic inside a backend into `Err` with the first line of its message;
/// the panic hook is silenced meanwhile, so nothing is printed.
///
/// burn reports some unsupported configurations (a device that does not answer, collective
/// operations on CPU devices) by panicking; callers turn the message into a typed error.
pub fn catch_backend_panic<T>(f: impl FnOnce() -> T + std::panic::UnwindSafe) -> Result<T, String> {
    harden_data::panics::catch_quietly(f).map_err(|text| {
        if text == "panicked" {
            "the backend failed to start".to_string()
        } else {
            text
        }
    })
}

/// Every compiled-in device that answers, with its name, for `harden info`.
///
/// GPUs are opened (a tiny computation runs on each), so this can take a few seconds.
pub fn probe_all() -> Vec<(String, Result<Device, DeviceError>)> {
    compiled_backends()
        .into_iter()
        .map(|name| (name.to_string(), parse_device(name)))
        .collect()
}

/// `fn $name() -> Option<Device>`: `Some($device)` when the feature is compiled in, else `None`.
macro_rules! cpu_backend {
    ($name:ident, $feature:literal, $device:expr) => {
        #[cfg(feature = $feature)]
        fn $name() -> Option<Device> {
            #[allow(deprecated)]
            // ndarray is deprecated upstream; harden keeps it as a compared backend.
            Some($device)
        }
        #[cfg(not(feature = $feature))]
        fn $name() -> Option<Device> {
            None
        }
    };
}

cpu_backend!(flex, "flex", Device::flex());
cpu_backend!(ndarray, "ndarray", Device::ndarray());
cpu_backend!(cubecl_cpu, "cpu", Device::cpu());

#[cfg(feature = "wgpu")]
fn wgpu(index: Option<usize>) -> Option<Result<Device, DeviceError>> {
    use burn::tensor::DeviceKind;
    Some(match index {
        None => Ok(Device::wgpu(DeviceKind::DefaultDevice)),
        Some(i) => {
            let all = std::panic::catch_unwind(|| {
                Device::enumerate(burn::tensor::DeviceType::Wgpu).into_vec()
            })
            .unwrap_or_default();
            all.get(i).cloned().ok_or_else(|| DeviceError::Unavailable {
                name: format!("wgpu:{i}"),
                reason: format!("wgpu lists {} adapter(s)", all.len()),
                available: available(),
            })
        }
    })
}
#[cfg(not(feature = "wgpu"))]
fn wgpu(_index: Option<usize>) -> Option<Result<Device, DeviceError>> {
    None
}

#[cfg(feature = "cuda")]
fn cuda(index: usize) -> Option<Result<Device, DeviceError>> {
    Some(Ok(Device::cuda(index)))
}
#[cfg(not(feature = "cuda"))]
fn cuda(_index: usize) -> Option<Result<Device, DeviceError>> {
    None
}

/// The device `name` for tests and benchmarks that run once per backend.
///
/// Returns `None` when the backend is not compiled in. A compiled-in backend that does not
/// answer (no GPU, no driver) returns `None` after printing why, except under CI (`CI` set),
/// where every compiled-in backend must run.
///
/// # Panics
///
/// Panics when the device does not answer and `CI` is set.
pub fn test_device(name: &str) -> Option<Device> {
    match parse_device(name) {
        Ok(device) => Some(device),
        Err(DeviceError::NotCompiled { .. }) => None,
        Err(e) => {
            assert!(std::env::var_os("CI").is_none(), "{e}");
            eprintln!("skipping {name}: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_names_are_errors_that_list_the_choices() {
        for bad in ["gpu", "flex:1", "cuda:x", ""] {
            let err = parse_device(bad).unwrap_err();
            assert!(matches!(err, DeviceError::Unknown { .. }), "{bad}: {err}");
        }
    }

    #[test]
    fn backends_not_compiled_in_name_the_feature_that_adds_them() {
        let missing = missing_backends();
        assert_eq!(missing.len() + compiled_backends().len(), BACKENDS.len());
        for name in missing {
            for spelled in [name.to_string(), format!("{name}:1"), format!(" {name} ")] {
                if name != "wgpu" && name != "cuda" && spelled.contains(':') {
                    continue;
                }
                let err = parse_device(&spelled).unwrap_err();
                let msg = err.to_string();
                assert!(
                    matches!(err, DeviceError::NotCompiled { feature, .. } if feature == name)
                        && msg.contains(&format!("--features {name}"))
                        && msg.contains(&available())
                        && !msg.contains('\n'),
                    "{spelled}: {msg}"
                );
            }
        }
    }

    #[cfg(all(feature = "flex", feature = "wgpu"))]
    #[test]
    fn auto_never_prefers_a_software_gpu_over_flex() {
        let auto = parse_device("auto").unwrap();
        if let Ok(wgpu) = parse_device("wgpu")
            && !is_hardware_gpu(&wgpu)
        {
            assert_eq!(auto, Device::flex(), "{}", describe(&wgpu));
        }
    }

    #[cfg(feature = "flex")]
    #[test]
    fn auto_and_flex_run_a_computation() {
        assert!(parse_device("flex").is_ok());
        assert!(parse_device("auto").is_ok());
        assert_eq!(parse_devices("flex, flex").unwrap().len(), 2);
    }
}
