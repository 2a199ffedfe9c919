//! Build script: compiles the freestanding guest runtime and every guest with
//! the system's gcc and binutils into `OUT_DIR/<name>.elf` (multiboot ELF32
//! images), which `src/lib.rs` embeds with `include_bytes!`.
//!
//! 64-bit guests are linked as ELF64 and converted with
//! `objcopy -O elf32-i386`, because multiboot loaders (QEMU's included)
//! refuse ELF64 kernels.
//!
//! Every image is then disassembled with objdump and the build fails if it
//! contains an instruction the engines must not be asked to run: x87, MMX,
//! SSE/AVX, int3, and the instructions kvm_pvm cannot handle (see
//! `forbidden_reason`).
//!
//! The tools can be overridden with the environment variables
//! `VIGIL_GUEST_CC`, `VIGIL_GUEST_LD`, `VIGIL_GUEST_OBJCOPY` and
//! `VIGIL_GUEST_OBJDUMP`.

#![forbid(unsafe_code)]

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Operating mode a guest runs in after the multiboot entry.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Width {
    /// 32-bit protected mode, paging off (`runtime/entry32.S`).
    W32,
    /// 64-bit long mode, identity-mapped first GiB (`runtime/longmode.S`).
    W64,
}

impl Width {
    fn tag(self) -> &'static str {
        match self {
            Width::W32 => "32",
            Width::W64 => "64",
        }
    }
}

/// One guest: its image name, width, sources (relative to `guests/`),
/// summary, and whether it never ends by itself.
struct Spec {
    name: String,
    width: Width,
    sources: Vec<String>,
    summary: String,
    endless: bool,
    configured: bool,
    vmx: bool,
    /// May use x87, MMX and SSE instructions (the FPU conformance guest).
    fpu: bool,
    /// May use CMPXCHG16B (kvm_pvm stops on it, so such a guest runs it last).
    cx16: bool,
}

/// Reads every `guests/<dir>/guest.list`. Each non-comment line describes
/// one guest: `name | 32 or 64 | sources relative to the directory | summary`;
/// the width may be followed by `endless` for a guest that never ends by
/// itself (the notify storms) and by `configured` for one that needs a
/// command line or modules (see its source), and by `vmx` for one that
/// needs VMX from its hypervisor (nested virtualization: soft only), and by
/// `fpu` for one whose code may use x87, MMX and SSE instructions (all
/// others are built and checked without them), and by `cx16` for one that
/// may use CMPXCHG16B.
/// Guests are listed in directory order, then line order.
fn read_specs(root: &Path) -> Vec<Spec> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(root)
        .unwrap_or_else(|e| panic!("guests: cannot list {}: {e}", root.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("guest.list").is_file())
        .collect();
    dirs.sort();
    let mut specs = Vec::new();
    for dir in dirs {
        let list = dir.join("guest.list");
        println!("cargo:rerun-if-changed={}", list.display());
        let text = fs::read_to_string(&list)
            .unwrap_or_else(|e| panic!("guests: cannot read {}: {e}", list.display()));
        let dir_name = dir.file_name().unwrap().to_string_lossy().into_owned();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.splitn(4, '|').map(str::trim).collect();

            if fields.len() != 4 || fields.iter().any(|f| f.is_empty()) {
                bad_line(&list, n + 1);
            }
            let mut mode = fields[1].split_whitespace();
            let width = match mode.next() {
                Some("32") => Width::W32,
                Some("64") => Width::W64,
                _ => bad_line(&list, n + 1),
            };
            let (mut endless, mut configured, mut vmx, mut fpu, mut cx16) =
                (false, false, false, false, false);
            for word in mode {
                match word {
                    "endless" if !endless => endless = true,
                    "configured" if !configured => configured = true,
                    "vmx" if !vmx => vmx = true,
                    "fpu" if !fpu => fpu = true,
                    "cx16" if !cx16 => cx16 = true,
                    _ => bad_line(&list, n + 1),
                }
            }
            specs.push(Spec {
                name: fields[0].to_string(),
                width,
                sources: fields[2]
                    .split_whitespace()
                    .map(|s| format!("{dir_name}/{s}"))
                    .collect(),
                summary: fields[3].to_string(),
                endless,
                configured,
                vmx,
                fpu,
                cx16,
            });
        }
    }
    let mut names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        panic!("guests: two guests are called {}", w[0]);
    }
    specs
}

/// Stops the build on a malformed `guest.list` line.
fn bad_line(list: &Path, line: usize) -> ! {
    panic!(
        "guests: {}:{line}: want `name | 32|64 [endless] [configured] [vmx] [fpu] [cx16] | sources | summary`",
        list.display()
    )
}

/// Writes the table `src/lib.rs` includes.
fn write_table(out: &Path, specs: &[Spec]) {
    let mut t = String::from("&[\n");
    for g in specs {
        let image = out.join(format!("{}.elf", g.name));
        t.push_str(&format!(
            "    Guest {{ name: {:?}, summary: {:?}, endless: {}, configured: {}, vmx: {}, long_mode: {}, image: include_bytes!({:?}) }},\n",
            g.name,
            g.summary,
            g.endless,
            g.configured,
            g.vmx,
            g.width == Width::W64,
            image.display().to_string()
        ));
    }
    t.push_str("]\n");
    fs::write(out.join("guest_table.rs"), t).expect("write guest table");
}

/// Runtime sources built for both widths (relative to `guests/runtime/`).
const RUNTIME_COMMON: &[&str] = &[
    "multiboot.S",
    "gdt.S",
    "init.c",
    "serial.c",
    "printf.c",
    "report.c",
    "idt.c",
    "mem.c",
    "exit.c",
];
/// Runtime sources for 32-bit guests only.
const RUNTIME_32: &[&str] = &["entry32.S", "isr32.S"];
/// Runtime sources for 64-bit guests only.
const RUNTIME_64: &[&str] = &["longmode.S", "isr64.S"];

/// Flags for every C and assembly file. -mgeneral-regs-only: kvm_pvm stops on
/// x87/SSE, so gcc must not emit them (only `fpu` guests use them, in inline
/// assembly). -fcf-protection=none: no endbr.
const CFLAGS: &[&str] = &[
    "-ffreestanding",
    "-fno-pic",
    "-fno-pie",
    "-fno-stack-protector",
    "-nostdlib",
    "-mgeneral-regs-only",
    "-O2",
    "-fno-asynchronous-unwind-tables",
    "-fno-unwind-tables",
    "-fcf-protection=none",
    "-fno-omit-frame-pointer",
    "-std=gnu11",
    "-Wall",
    "-Wextra",
];
const CFLAGS_32: &[&str] = &["-m32", "-march=i686"];
const CFLAGS_64: &[&str] = &["-m64", "-march=x86-64", "-mno-red-zone"];

struct Tools {
    cc: String,
    ld: String,
    objcopy: String,
    objdump: String,
}

fn tool(var: &str, default: &str) -> String {
    println!("cargo:rerun-if-env-changed={var}");
    env::var(var).unwrap_or_else(|_| default.to_string())
}

/// Fail the build with a clear message if `prog` cannot be run.
fn require_tool(prog: &str, what: &str) {
    match Command::new(prog).arg("--version").output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "guests: `{prog} --version` failed ({}); the guests need {what}.\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!(
            "guests: required tool `{prog}` not found ({e}). The guests are built with {what}; \
             on Debian/Ubuntu: apt-get install gcc binutils"
        ),
    }
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Run a command; panic with its output if it fails, forward warnings.
fn check(cmd: &Command, out: std::io::Result<Output>) {
    let out = out.unwrap_or_else(|e| panic!("guests: cannot run `{}`: {e}", describe(cmd)));
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        panic!(
            "guests: command failed ({}):\n  {}\n{}{}",
            out.status,
            describe(cmd),
            String::from_utf8_lossy(&out.stdout),
            stderr
        );
    }
    for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
        println!("cargo:warning={line}");
    }
}

fn run(mut cmd: Command) {
    let out = cmd.output();
    check(&cmd, out);
}

/// Run independent commands, at most `jobs` at a time.
fn run_parallel(cmds: Vec<Command>, jobs: usize) {
    let next = AtomicUsize::new(0);
    let cmds: Vec<Mutex<Command>> = cmds.into_iter().map(Mutex::new).collect();
    std::thread::scope(|s| {
        for _ in 0..jobs.clamp(1, cmds.len().max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(cmd) = cmds.get(i) else { break };
                let mut cmd = cmd.lock().unwrap();
                let out = cmd.output();
                check(&cmd, out);
            });
        }
    });
}

/// The command compiling (or assembling) `src` for `width` into `obj`.
fn compile(tools: &Tools, include: &Path, width: Width, src: &Path, obj: &Path) -> Command {
    let mut cmd = Command::new(&tools.cc);
    cmd.args(CFLAGS);
    cmd.args(match width {
        Width::W32 => CFLAGS_32,
        Width::W64 => CFLAGS_64,
    });
    cmd.arg("-I").arg(include);
    cmd.arg("-c").arg(src).arg("-o").arg(obj);
    cmd
}

fn object_name(src: &str) -> String {
    let base = Path::new(src).file_stem().unwrap().to_string_lossy();
    let ext = Path::new(src).extension().unwrap().to_string_lossy();
    format!("{base}_{ext}.o")
}

fn main() {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let runtime = root.join("runtime");
    let include = runtime.join("include");
    let jobs = env::var("NUM_JOBS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);

    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=runtime");
    println!("cargo:rerun-if-changed=.");
    let specs = read_specs(&root);
    for g in &specs {
        for src in &g.sources {
            let dir = Path::new(src).parent().unwrap();
            println!("cargo:rerun-if-changed={}", root.join(dir).display());
        }
    }

    let tools = Tools {
        cc: tool("VIGIL_GUEST_CC", "gcc"),
        ld: tool("VIGIL_GUEST_LD", "ld"),
        objcopy: tool("VIGIL_GUEST_OBJCOPY", "objcopy"),
        objdump: tool("VIGIL_GUEST_OBJDUMP", "objdump"),
    };
    require_tool(&tools.cc, "gcc (C compiler and driver for the assembler)");
    let assembler = Command::new(&tools.cc)
        .arg("-print-prog-name=as")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "as".to_string());
    require_tool(&assembler, "the GNU assembler `as` (binutils)");
    require_tool(&tools.ld, "the GNU linker `ld` (binutils)");
    require_tool(&tools.objcopy, "`objcopy` (binutils)");
    require_tool(&tools.objdump, "`objdump` (binutils)");

    // Compile: the runtime once per width, then every guest's sources.
    let mut cmds = Vec::new();
    let mut runtime_objs: [Vec<PathBuf>; 2] = [Vec::new(), Vec::new()];
    for (i, width) in [Width::W32, Width::W64].into_iter().enumerate() {
        let dir = out.join(format!("runtime{}", width.tag()));
        fs::create_dir_all(&dir).unwrap();
        let own = match width {
            Width::W32 => RUNTIME_32,
            Width::W64 => RUNTIME_64,
        };
        for src in RUNTIME_COMMON.iter().chain(own) {
            let obj = dir.join(object_name(src));
            cmds.push(compile(&tools, &include, width, &runtime.join(src), &obj));
            runtime_objs[i].push(obj);
        }
    }
    let mut guest_objs = Vec::new();
    for g in &specs {
        let dir = out.join("obj").join(&g.name);
        fs::create_dir_all(&dir).unwrap();
        let mut objs = Vec::new();
        for src in &g.sources {
            let obj = dir.join(object_name(src));
            cmds.push(compile(&tools, &include, g.width, &root.join(src), &obj));
            objs.push(obj);
        }
        guest_objs.push(objs);
    }
    run_parallel(cmds, jobs);

    // Link.
    for (g, objs) in specs.iter().zip(&guest_objs) {
        let image = out.join(format!("{}.elf", g.name));
        let linked = match g.width {
            Width::W32 => image.clone(),
            Width::W64 => out.join(format!("{}.elf64", g.name)),
        };
        let (emulation, script, rt) = match g.width {
            Width::W32 => ("elf_i386", "link32.ld", &runtime_objs[0]),
            Width::W64 => ("elf_x86_64", "link64.ld", &runtime_objs[1]),
        };
        let mut ld = Command::new(&tools.ld);
        ld.args([
            "-nostdlib",
            "-static",
            "-z",
            "max-page-size=0x1000",
            "-m",
            emulation,
        ])
        .arg("-T")
        .arg(runtime.join(script))
        .arg("-Map")
        .arg(out.join(format!("{}.map", g.name)))
        .arg("-o")
        .arg(&linked)
        .args(rt)
        .args(objs);
        run(ld);
        // .boot holds the 32-bit entry code; .text is in the guest's width;
        // .text16, where a guest has it, is 16-bit code it runs in real mode.
        let none = Allowed::default();
        verify_instructions(&tools, &linked, ".boot", Some("i386"), none);
        let text_machine = (g.width == Width::W32).then_some("i386");
        let allowed = Allowed {
            fpu: g.fpu,
            cx16: g.cx16,
            int3: false,
        };
        verify_instructions(&tools, &linked, ".text", text_machine, allowed);
        if has_section(&tools, &linked, ".text16") {
            verify_instructions(&tools, &linked, ".text16", Some("i8086"), none);
        }
        // .int3text holds code that executes INT3, which kvm_pvm stops on:
        // a guest runs it last, and conformance-differences.txt lists the
        // checks kvm cannot reach. Everything else is banned there as well.
        if has_section(&tools, &linked, ".int3text") {
            let int3 = Allowed {
                int3: true,
                ..allowed
            };
            verify_instructions(&tools, &linked, ".int3text", text_machine, int3);
        }
        if g.width == Width::W64 {
            let mut objcopy = Command::new(&tools.objcopy);
            objcopy.args(["-O", "elf32-i386"]).arg(&linked).arg(&image);
            run(objcopy);
        }
    }
    write_table(&out, &specs);
}

/// Instruction prefixes objdump prints before the mnemonic.
const PREFIXES: &[&str] = &[
    "lock", "rep", "repz", "repe", "repnz", "repne", "data16", "data32", "addr16", "addr32", "cs",
    "ds", "es", "fs", "gs", "ss", "notrack", "bnd", "rex", "rex.W", "rex.B", "rex.R", "rex.X",
    "rex.WB", "rex.WR", "rex.WX",
];

/// What a section may use beyond the instructions every engine runs.
#[derive(Debug, Clone, Copy, Default)]
struct Allowed {
    /// x87, MMX and SSE instructions.
    fpu: bool,
    /// CMPXCHG16B.
    cx16: bool,
    /// INT3 and INT 3.
    int3: bool,
}

/// Why the engines must not be given this instruction (objdump AT&T text),
/// or None if it is fine under `allowed`.
fn forbidden_reason(text: &str, allowed: Allowed) -> Option<&'static str> {
    let Allowed {
        fpu,
        cx16,
        int3: int3_allowed,
    } = allowed;
    let mut tokens = text.split_whitespace().skip_while(|t| PREFIXES.contains(t));
    let mnemonic = tokens.next()?;
    let operands: String = tokens.collect::<Vec<_>>().join(" ");
    let banned = [
        ("int3", "int3 (kvm_pvm stops on it)"),
        ("xgetbv", "xgetbv (kvm_pvm stops on it)"),
        ("xsetbv", "xsetbv"),
        ("movbe", "movbe (kvm_pvm stops on it)"),
        ("clflushopt", "clflushopt (kvm_pvm stops on it)"),
        ("cmpxchg16b", "cmpxchg16b (kvm_pvm stops on it)"),
        ("rdrand", "rdrand"),
        ("rdseed", "rdseed"),
        ("emms", "MMX"),
        ("ldmxcsr", "SSE"),
        ("stmxcsr", "SSE"),
        ("endbr32", "CET endbr (build with -fcf-protection=none)"),
        ("endbr64", "CET endbr (build with -fcf-protection=none)"),
    ];
    let int3 = mnemonic == "int3" || (mnemonic == "int" && operands.trim() == "$0x3");
    if int3 && int3_allowed {
        return None;
    }
    let fpu_ok = |why: &&str| fpu && (*why == "MMX" || *why == "SSE");
    let cx16_ok = |m: &&str| cx16 && *m == "cmpxchg16b";
    if let Some((_, why)) = banned
        .iter()
        .find(|(m, why)| *m == mnemonic && !fpu_ok(why) && !cx16_ok(m))
    {
        return Some(why);
    }
    if mnemonic.starts_with("xsave") || mnemonic.starts_with("xrstor") {
        return Some("xsave/xrstor (kvm_pvm stops on them)");
    }
    if mnemonic == "int" && operands.trim() == "$0x3" {
        return Some("int $3 (kvm_pvm stops on it)");
    }
    if fpu {
        return None;
    }
    if mnemonic.starts_with('f') {
        return Some("x87 (kvm_pvm stops on it; only `fpu` guests may use it)");
    }
    if ["%xmm", "%ymm", "%zmm", "%mm", "%st", "%k"]
        .iter()
        .any(|r| operands.contains(r))
    {
        return Some("SSE/AVX/MMX/x87 register (kvm_pvm stops on them; use -mgeneral-regs-only)");
    }
    None
}

/// Whether `elf` has a section called `section` (objdump's section headers).
fn has_section(tools: &Tools, elf: &Path, section: &str) -> bool {
    let mut cmd = Command::new(&tools.objdump);
    cmd.arg("-h").arg(elf);
    let out = cmd.output();
    let out = out.unwrap_or_else(|e| panic!("guests: cannot run `{}`: {e}", describe(&cmd)));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some(section))
}

/// Disassemble `section` of `elf` (as `machine`, objdump's `-M`: i386 or
/// i8086, or the file's own width) and fail the build on forbidden
/// instructions (x87/MMX/SSE, CMPXCHG16B and INT3 only where `allowed`).
fn verify_instructions(
    tools: &Tools,
    elf: &Path,
    section: &str,
    machine: Option<&str>,
    allowed: Allowed,
) {
    let mut cmd = Command::new(&tools.objdump);
    cmd.args(["-d", "-w", "-j", section]);
    if let Some(m) = machine {
        cmd.args(["-M", m]);
    }
    cmd.arg(elf);
    let out = cmd.output();
    let out = out.unwrap_or_else(|e| panic!("guests: cannot run `{}`: {e}", describe(&cmd)));
    if !out.status.success() {
        panic!(
            "guests: `{}` failed:\n{}",
            describe(&cmd),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let listing = String::from_utf8_lossy(&out.stdout);
    let bad: Vec<String> = listing
        .lines()
        .filter_map(|line| {
            // "  101809:\t0f b7 bc 24 ...\tmovzwl 0x1c8(%esp),%edi"
            let text = line.splitn(3, '\t').nth(2)?;
            forbidden_reason(text, allowed).map(|why| format!("  {}  <- {why}", line.trim()))
        })
        .collect();
    if !bad.is_empty() {
        panic!(
            "guests: {} ({section}) contains instructions the engines must not run:\n{}",
            elf.display(),
            bad.join("\n")
        );
    }
}
