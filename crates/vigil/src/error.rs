//! Every way `vigil` can fail before or instead of a guest's ending, each
//! with its one-line message and its exit status.

use crate::cli::MAX_MEMORY_MIB;
use crate::status;
use std::fmt;
use std::path::PathBuf;
use vmm::loader::LoadError;
use vmm::monitor::WatchdogTooShort;
use vmm::RunError;

/// Options that cannot work together, refused before anything starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    /// `--no-intercept-ac-db` with `--accel kvm`.
    NoInterceptOnKvm,
    /// `--inject-notify-invalid` or `--inject-stall` with `--accel kvm`.
    InjectOnKvm,
    /// `--inject-notify-invalid` with `--notify-vmexit disable`.
    InjectWithoutNotify,
    /// `--notify-window` with `--notify-vmexit disable`.
    WindowWithoutNotify,
    /// `--gdb` with `--accel kvm`.
    GdbOnKvm,
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Conflict::NoInterceptOnKvm => {
                "--no-intercept-ac-db needs --accel soft: KVM always intercepts #AC and #DB"
            }
            Conflict::InjectOnKvm => {
                "--inject-notify-invalid and --inject-stall need --accel soft (soft CPU fault injection)"
            }
            Conflict::InjectWithoutNotify => {
                "--inject-notify-invalid has no effect with --notify-vmexit disable; drop one"
            }
            Conflict::WindowWithoutNotify => {
                "--notify-window has no effect with --notify-vmexit disable; drop one"
            }
            Conflict::GdbOnKvm => {
                "--gdb needs --accel soft: only the soft accelerator offers debug access"
            }
        })
    }
}

/// What a file given on the command line is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileRole {
    /// The kernel.
    Kernel,
    /// A `--module`.
    Module,
    /// The `--initrd`.
    Initrd,
}

impl fmt::Display for FileRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileRole::Kernel => "kernel",
            FileRole::Module => "module",
            FileRole::Initrd => "initrd",
        })
    }
}

/// Why `vigil` failed.
#[derive(Debug)]
pub enum Error {
    /// Options that cannot work together.
    Conflict(Conflict),
    /// `--guest` names no built-in guest.
    UnknownGuest(String),
    /// Neither a kernel file nor `--guest`.
    NoKernel,
    /// A kernel or module file cannot be read.
    ReadFile {
        /// What it is for.
        role: FileRole,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A kernel or module that is not a regular file (a device, a FIFO, a
    /// directory).
    NotRegularFile {
        /// What it is for.
        role: FileRole,
        /// The file.
        path: PathBuf,
    },
    /// A kernel or module larger than guest RAM.
    LargerThanRam {
        /// What it is for.
        role: FileRole,
        /// The file.
        path: PathBuf,
        /// Guest RAM in MiB.
        memory_mib: u64,
    },
    /// A `--module` names no file.
    ModuleWithoutFile(String),
    /// The `--events` file cannot be created.
    CreateEventLog {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The `--events` file is a FIFO that nobody reads.
    EventLogWithoutReader {
        /// The FIFO.
        path: PathBuf,
    },
    /// `--append` longer than what the command line has room for after the
    /// kernel's name.
    AppendTooLong {
        /// Its length in bytes.
        len: usize,
        /// The bytes left for it.
        room: usize,
    },
    /// `--watchdog` below the smallest bound.
    Watchdog(WatchdogTooShort),
    /// The run could not take place or was cut short by the host side.
    Run(RunError),
}

impl Error {
    /// The process exit status: 2 for what the command line or its files
    /// got wrong (an unloadable kernel included), 10 for what the
    /// accelerator could not do.
    pub fn status(&self) -> u8 {
        match self {
            Error::Run(RunError::Load(_) | RunError::Gdb(_)) => status::USAGE,
            Error::Run(_) => status::ACCEL_FAILED,
            Error::Conflict(_)
            | Error::UnknownGuest(_)
            | Error::NoKernel
            | Error::ReadFile { .. }
            | Error::NotRegularFile { .. }
            | Error::LargerThanRam { .. }
            | Error::ModuleWithoutFile(_)
            | Error::CreateEventLog { .. }
            | Error::EventLogWithoutReader { .. }
            | Error::AppendTooLong { .. }
            | Error::Watchdog(_) => status::USAGE,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Conflict(c) => write!(f, "{c}"),
            Error::UnknownGuest(name) => {
                write!(
                    f,
                    "no built-in guest named '{name}'; `vigil guests` lists them"
                )
            }
            Error::NoKernel => write!(
                f,
                "no kernel given: pass a multiboot kernel file or --guest NAME"
            ),
            Error::ReadFile { role, path, source } => {
                write!(f, "cannot read {role} '{}': {source}", path.display())
            }
            Error::NotRegularFile { role, path } => write!(
                f,
                "{role} '{}' is not a regular file (a device or FIFO can be read without end); \
                 pass a file",
                path.display()
            ),
            Error::LargerThanRam {
                role,
                path,
                memory_mib,
            } if *memory_mib < MAX_MEMORY_MIB => write!(
                f,
                "{role} '{}' is larger than the {memory_mib} MiB of guest RAM; raise --memory",
                path.display()
            ),
            Error::LargerThanRam { role, path, .. } => write!(
                f,
                "{role} '{}' is larger than the largest guest RAM ({MAX_MEMORY_MIB} MiB); pass \
                 a smaller file",
                path.display()
            ),
            Error::ModuleWithoutFile(spec) => write!(
                f,
                "--module '{spec}' names no file; use --module FILE[,STRING]"
            ),
            Error::CreateEventLog { path, source } => write!(
                f,
                "cannot create the event log '{}': {source}; check the path and its directory",
                path.display()
            ),
            Error::EventLogWithoutReader { path } => write!(
                f,
                "the event log '{}' is a FIFO with no reader; start its reader first",
                path.display()
            ),
            Error::AppendTooLong { len, room } => write!(
                f,
                "--append is {len} bytes; at most {room} fit after the kernel's name; shorten it"
            ),
            Error::Run(RunError::Load(e)) if beyond_any_memory(e) => write!(f, "{}", BeyondRam(e)),
            Error::Watchdog(e) => write!(
                f,
                "--watchdog {:.3}s is too short: a healthy vCPU returns to L0 at every 10 ms host \
                 tick, so the bound must be at least {} ms",
                e.watchdog.as_secs_f64(),
                vmm::monitor::MIN_WATCHDOG.as_millis()
            ),
            Error::Run(e @ RunError::NotifyUnavailable(_)) => write!(
                f,
                "--notify-vmexit require: {e}; use --accel soft, or --notify-vmexit run to go on \
                 without it"
            ),
            Error::Run(e @ RunError::BusLockUnavailable(_)) => write!(
                f,
                "--bus-lock-ratelimit: {e}; use --accel soft or drop the option"
            ),
            Error::Run(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::ReadFile { source, .. } | Error::CreateEventLog { source, .. } => Some(source),
            Error::Watchdog(e) => Some(e),
            Error::Run(e) => Some(e),
            Error::Conflict(_)
            | Error::UnknownGuest(_)
            | Error::NoKernel
            | Error::EventLogWithoutReader { .. }
            | Error::AppendTooLong { .. }
            | Error::NotRegularFile { .. }
            | Error::LargerThanRam { .. }
            | Error::ModuleWithoutFile(_) => None,
        }
    }
}

/// Whether `e` asks for more guest RAM than `--memory` can give: no
/// `--memory` advice can help then.
fn beyond_any_memory(e: &LoadError) -> bool {
    let max = MAX_MEMORY_MIB << 20;
    match *e {
        LoadError::SegmentOutsideRam { addr, size, .. }
        | LoadError::ModuleOutsideRam { addr, size, .. }
        | LoadError::BootInfoOutsideRam { addr, size, .. } => addr.saturating_add(size) > max,
        _ => false,
    }
}

/// A load error of something that lies beyond the largest guest RAM.
struct BeyondRam<'a>(&'a LoadError);

impl fmt::Display for BeyondRam<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self.0 {
            LoadError::SegmentOutsideRam { addr, size, .. } => write!(
                f,
                "segment at {addr:#x} of {size:#x} bytes lies beyond the largest guest RAM \
                 ({MAX_MEMORY_MIB} MiB); link the kernel lower (e.g. at 1 MiB)"
            ),
            LoadError::ModuleOutsideRam { index, addr, size } => write!(
                f,
                "module {index} ({size} bytes) would end beyond the largest guest RAM \
                 ({MAX_MEMORY_MIB} MiB) when loaded at {addr:#x}; use a smaller module"
            ),
            LoadError::BootInfoOutsideRam { addr, size, .. } => write!(
                f,
                "the multiboot information ({size} bytes) would end beyond the largest guest \
                 RAM ({MAX_MEMORY_MIB} MiB) after the kernel and its modules at {addr:#x}, and \
                 no gap below them holds it; link the kernel lower or use smaller modules"
            ),
            ref e => write!(f, "{e}"),
        }
    }
}

impl From<RunError> for Error {
    fn from(e: RunError) -> Self {
        Error::Run(e)
    }
}

impl From<WatchdogTooShort> for Error {
    fn from(e: WatchdogTooShort) -> Self {
        Error::Watchdog(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each error's status, as README.md lists them.
    #[test]
    fn statuses() {
        let io = || std::io::Error::from(std::io::ErrorKind::NotFound);
        let table: [(Error, u8); 7] = [
            (Error::Conflict(Conflict::InjectOnKvm), 2),
            (Error::NoKernel, 2),
            (
                Error::ReadFile {
                    role: FileRole::Kernel,
                    path: "k".into(),
                    source: io(),
                },
                2,
            ),
            (
                Error::Run(RunError::Load(vmm::loader::LoadError::CmdlineContainsNul)),
                2,
            ),
            (Error::Run(RunError::NotifyUnavailable("kvm")), 10),
            (Error::Run(RunError::BusLockUnavailable("kvm")), 10),
            (Error::Run(RunError::Monitor(io())), 10),
        ];
        for (e, want) in table {
            assert_eq!(e.status(), want, "{e}");
        }
    }

    #[test]
    fn run_errors_name_the_options() {
        assert_eq!(
            Error::Run(RunError::NotifyUnavailable("kvm")).to_string(),
            "--notify-vmexit require: the kvm accelerator on this host has no notify VM exit \
             (KVM_CAP_X86_NOTIFY_VMEXIT); use --accel soft, or --notify-vmexit run to go on \
             without it"
        );
        assert_eq!(
            Error::Run(RunError::BusLockUnavailable("kvm")).to_string(),
            "--bus-lock-ratelimit: the kvm accelerator on this host cannot report bus locks \
             (KVM_CAP_X86_BUS_LOCK_EXIT); use --accel soft or drop the option"
        );
    }

    #[test]
    fn boot_info_beyond_any_memory_advises_no_memory() {
        let load = |addr| {
            Error::Run(RunError::Load(LoadError::BootInfoOutsideRam {
                addr,
                size: 0x101,
                memory_bytes: 128 << 20,
            }))
            .to_string()
        };
        assert!(load(0x800_0000).ends_with("; raise --memory"));
        let beyond = load(MAX_MEMORY_MIB << 20);
        assert!(
            beyond.ends_with("link the kernel lower or use smaller modules"),
            "{beyond}"
        );
        assert!(!beyond.contains("--memory"), "{beyond}");
    }
}
