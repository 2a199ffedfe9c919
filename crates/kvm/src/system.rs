//! Opening `/dev/kvm`: the accelerator object and the availability probe.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use accel::{AccelError, Accelerator, CpuDescription, EntryMode, EntryState, Vm, VmConfig};
use kvm_ioctls::Kvm;

use crate::vm::KvmVm;

/// The KVM API version this crate speaks (`KVM_GET_API_VERSION`); every
/// Linux since 2.6.22 reports 12.
pub const REQUIRED_API_VERSION: i32 = 12;

/// Where the KVM device normally lives.
pub const DEFAULT_DEVICE: &str = "/dev/kvm";

/// The KVM accelerator: an open handle on `/dev/kvm` with a checked API
/// version. It creates [`KvmVm`]s.
#[derive(Debug)]
pub struct KvmAccelerator {
    kvm: Kvm,
}

impl KvmAccelerator {
    /// Opens [`DEFAULT_DEVICE`] and checks its API version.
    ///
    /// A missing or unopenable device, or an API version other than
    /// [`REQUIRED_API_VERSION`], gives [`AccelError::Unavailable`] with a
    /// reason that tells the operator what to do.
    pub fn open() -> Result<Self, AccelError> {
        Self::open_path(Path::new(DEFAULT_DEVICE))
    }

    /// Like [`KvmAccelerator::open`], for a KVM device at another path.
    pub fn open_path(path: &Path) -> Result<Self, AccelError> {
        let c_path = CString::new(path.as_os_str().as_bytes()).map_err(|_| {
            AccelError::unavailable(KvmUnavailable::NulInPath {
                path: path.to_path_buf(),
            })
        })?;
        let kvm = Kvm::new_with_path(&c_path).map_err(|e| {
            AccelError::unavailable(KvmUnavailable::Open {
                path: path.to_path_buf(),
                source: io::Error::from_raw_os_error(e.errno()),
            })
        })?;
        check_api_version(path, kvm.get_api_version()).map_err(AccelError::unavailable)?;
        Ok(Self { kvm })
    }

    /// The KVM API version the device reported.
    pub fn api_version(&self) -> i32 {
        self.kvm.get_api_version()
    }

    /// The underlying `kvm-ioctls` handle.
    pub fn kvm(&self) -> &Kvm {
        &self.kvm
    }
}

impl Accelerator for KvmAccelerator {
    type Vm = KvmVm;

    fn name(&self) -> &'static str {
        "kvm"
    }

    fn create_vm(&self, config: &VmConfig) -> Result<KvmVm, AccelError> {
        KvmVm::new(&self.kvm, config)
    }

    fn supports_bus_lock_exit(&self) -> bool {
        let modes = self
            .kvm
            .check_extension_raw(kvm_bindings::KVM_CAP_X86_BUS_LOCK_EXIT.into());
        modes > 0 && modes as u32 & kvm_bindings::KVM_BUS_LOCK_DETECTION_EXIT != 0
    }

    fn describe_cpu(&self) -> Result<CpuDescription, AccelError> {
        let cpuid = self
            .kvm
            .get_supported_cpuid(kvm_bindings::KVM_MAX_CPUID_ENTRIES)
            .map_err(crate::vcpu::host_error("KVM_GET_SUPPORTED_CPUID"))?;
        Ok(crate::cpuid::describe(cpuid.as_slice()))
    }

    fn supports_notify_vmexit(&self) -> bool {
        self.kvm
            .check_extension_raw(kvm_bindings::KVM_CAP_X86_NOTIFY_VMEXIT.into())
            > 0
    }
}

/// Why the KVM device cannot be used, each with what to do about it: the
/// cause of an [`AccelError::Unavailable`].
#[derive(Debug, thiserror::Error)]
pub enum KvmUnavailable {
    /// The device path cannot be passed to the kernel.
    #[error("KVM device path {} contains a NUL byte", path.display())]
    NulInPath {
        /// The path given.
        path: PathBuf,
    },
    /// Opening the device failed.
    #[error("{}", open_failure_reason(path, source))]
    Open {
        /// The device.
        path: PathBuf,
        /// Why `open` failed.
        #[source]
        source: io::Error,
    },
    /// The device does not answer `KVM_GET_API_VERSION`.
    #[error(
        "{} does not answer KVM_GET_API_VERSION: it is not a KVM device; point Vigil at \
         the real /dev/kvm or run with the soft accelerator",
        path.display()
    )]
    NotKvm {
        /// The device.
        path: PathBuf,
    },
    /// It speaks another KVM API version than [`REQUIRED_API_VERSION`].
    #[error(
        "{} reports KVM API version {version}, but Vigil needs version \
         {REQUIRED_API_VERSION}: this kernel's KVM is incompatible; run on a standard \
         Linux KVM or with the soft accelerator",
        path.display()
    )]
    ApiVersion {
        /// The device.
        path: PathBuf,
        /// The version it reported.
        version: i32,
    },
}

/// Explains to the operator why the KVM device at `path` could not be
/// opened, and what to do about it.
pub fn open_failure_reason(path: &Path, err: &io::Error) -> String {
    const FALLBACK: &str = "or run with the soft accelerator";
    let path = path.display();
    match (err.kind(), err.raw_os_error()) {
        (io::ErrorKind::NotFound, _) => format!(
            "{path} does not exist: this host has no KVM. Load the kvm_intel or kvm_amd \
             module (modprobe), enable virtualization in the firmware, expose it to this \
             VM or container, {FALLBACK}"
        ),
        (io::ErrorKind::PermissionDenied, _) => format!(
            "permission denied opening {path}: add this user to the group that owns it \
             (usually `kvm`), run as root, {FALLBACK}"
        ),
        // ENXIO / ENODEV: the node exists but no driver is behind it.
        (_, Some(6 | 19)) => format!(
            "{path} exists but no KVM driver answers it ({err}): load the kvm_intel or \
             kvm_amd module (modprobe), {FALLBACK}"
        ),
        _ => format!("cannot open {path}: {err}; check that KVM works on this host, {FALLBACK}"),
    }
}

/// Checks the version `KVM_GET_API_VERSION` reported for the device at
/// `path`; the error explains the mismatch to the operator.
pub fn check_api_version(path: &Path, version: i32) -> Result<(), KvmUnavailable> {
    let path = path.to_path_buf();
    if version == REQUIRED_API_VERSION {
        Ok(())
    } else if version < 0 {
        Err(KvmUnavailable::NotKvm { path })
    } else {
        Err(KvmUnavailable::ApiVersion { path, version })
    }
}

/// Reports whether KVM is usable here: opens `/dev/kvm`, creates a VM with
/// one page of RAM and one vCPU in the multiboot entry state. The error is a
/// human-readable reason, for tests to print when they skip.
pub fn probe() -> Result<(), String> {
    let accel = KvmAccelerator::open().map_err(|e| e.to_string())?;
    let mut vm = accel
        .create_vm(&VmConfig::with_memory(0x1000))
        .map_err(|e| format!("KVM is present but cannot create a VM: {e}"))?;
    let entry = EntryState {
        mode: EntryMode::Protected32Flat,
        rip: 0,
        rsp: 0,
        rax: 0,
        rbx: 0,
    };
    vm.create_vcpu(0, &entry)
        .map_err(|e| format!("KVM is present but cannot create a vCPU: {e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_device_is_unavailable_with_advice() {
        let path = Path::new("/nonexistent/vigil-no-kvm");
        match KvmAccelerator::open_path(path) {
            Err(AccelError::Unavailable(why)) => {
                let why = why.to_string();
                assert!(why.contains("/nonexistent/vigil-no-kvm"), "{why}");
                assert!(why.contains("modprobe"), "{why}");
                assert!(why.contains("soft accelerator"), "{why}");
            }
            other => panic!("expected Unavailable, got {other:?}"),
        }
    }

    #[test]
    fn non_kvm_device_is_unavailable() {
        // /dev/null opens fine but does not answer KVM ioctls.
        match KvmAccelerator::open_path(Path::new("/dev/null")) {
            Err(AccelError::Unavailable(why)) => {
                assert!(why.to_string().contains("/dev/null"), "{why}")
            }
            other => panic!("expected Unavailable, got {other:?}"),
        }
    }

    #[test]
    fn permission_reason_names_the_group() {
        let err = io::Error::from_raw_os_error(13);
        let why = open_failure_reason(Path::new("/dev/kvm"), &err);
        assert!(why.contains("permission denied"), "{why}");
        assert!(why.contains("kvm"), "{why}");
    }

    #[test]
    fn enxio_reason_asks_for_the_module() {
        let why = open_failure_reason(Path::new("/dev/kvm"), &io::Error::from_raw_os_error(6));
        assert!(why.contains("modprobe"), "{why}");
    }

    #[test]
    fn api_version_must_be_12() {
        let dev = Path::new("/dev/kvm");
        assert!(check_api_version(dev, 12).is_ok());
        let why = check_api_version(dev, 11).unwrap_err().to_string();
        assert!(why.contains("11") && why.contains("12"), "{why}");
        let why = check_api_version(dev, -1).unwrap_err().to_string();
        assert!(why.contains("not a KVM device"), "{why}");
    }
}
