//! Builds the XDP program (crate `lb-ebpf`, binary `xlb-ebpf`) for the bpf target and tells
//! the compiler where the object is: `env!("XLB_EBPF_OBJECT")`, for `include_bytes_aligned!`.
//!
//! This is aya-template's approach (aya's `aya-build`), written out here because the
//! aya-build releases need a newer rustc than this workspace's: cargo cannot yet express
//! "depends on the bpf binary of lb-ebpf" (artifact dependencies, cargo#12374), so this
//! script runs a nested `cargo +nightly build` of lb-ebpf, in a target directory of its own
//! (`target/bpf`) so that it never waits on the lock that the outer build holds (cargo#6412).
//!
//! The bpf-linker comes from `XLB_BPF_LINKER`, else PATH, else what `cargo xtask setup`
//! built under `target/tools/`. `XLB_SKIP_EBPF=1` skips the nested build and embeds an empty
//! placeholder (enough for `cargo check` / clippy / rust-analyzer without a bpf-linker; such
//! an `xlb` cannot load its program).

use std::{
    env,
    ffi::{OsStr, OsString},
    fs,
    path::{Path, PathBuf},
    process::{Command, Output},
};

const EBPF_PACKAGE: &str = "lb-ebpf";
const EBPF_BIN: &str = "xlb-ebpf";
const OBJECT_ENV: &str = "XLB_EBPF_OBJECT";
const LINKER_ENV: &str = "XLB_BPF_LINKER";
const SKIP_ENV: &str = "XLB_SKIP_EBPF";
const NIGHTLY: &str = "+nightly";

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let workspace = manifest_dir
        .parent()
        .expect("lb-userspace sits in the workspace");

    println!("cargo:rerun-if-changed=build.rs");
    // The eBPF binary's inputs: its crate, the ABI crate, the workspace manifest (profiles,
    // dependency versions) and the lock file.
    for input in [
        "lb-ebpf",
        "lb-common/src",
        "lb-common/Cargo.toml",
        "Cargo.toml",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", workspace.join(input).display());
    }
    println!("cargo:rerun-if-env-changed={SKIP_ENV}");

    if env::var_os(SKIP_ENV).is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true")) {
        let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
        let placeholder = out_dir.join(EBPF_BIN);
        fs::write(&placeholder, []).expect("cannot write the placeholder object");
        println!("cargo:warning={SKIP_ENV} is set: xlb embeds an empty XDP object, not lb-ebpf");
        println!("cargo:rustc-env={OBJECT_ENV}={}", placeholder.display());
        return;
    }

    // Same byte order as the machine xlb is built for.
    let target = match env::var("CARGO_CFG_TARGET_ENDIAN").as_deref() {
        Ok("little") => "bpfel-unknown-none",
        Ok("big") => "bpfeb-unknown-none",
        other => panic!("unsupported CARGO_CFG_TARGET_ENDIAN={other:?}"),
    };
    // aya-ebpf selects per-architecture code (pt_regs layouts) with `bpf_target_arch`.
    let arch = env::var("CARGO_CFG_TARGET_ARCH").expect("set by cargo");
    let arch = if arch.starts_with("riscv64") {
        "riscv64"
    } else {
        arch.as_str()
    };

    let linker = find_bpf_linker(workspace)
        .unwrap_or_else(|| panic!("bpf-linker not found: run `cargo xtask setup`"));
    let linker_dir = linker.parent().expect("a file has a parent directory");

    let target_dir = workspace.join("target").join("bpf");
    let object = target_dir.join(target).join("release").join(EBPF_BIN);

    let mut cmd = Command::new("cargo");
    cmd.arg(NIGHTLY)
        .args([
            "build",
            "--package",
            EBPF_PACKAGE,
            "--release",
            "--target",
            target,
        ])
        .args(["-Z", "build-std=core", "--target-dir"])
        .arg(&target_dir)
        .current_dir(workspace);
    clean_env(&mut cmd);
    // BTF (from full debug info) lets bpftool print maps with their field names.
    let flags = [
        format!("--cfg=bpf_target_arch=\"{arch}\""),
        "-Cdebuginfo=2".to_owned(),
        "-Clink-arg=--btf".to_owned(),
    ];
    cmd.env("CARGO_ENCODED_RUSTFLAGS", flags.join("\x1f"));
    cmd.env("PATH", prepend_path(linker_dir));

    let Output { status, stderr, .. } = cmd
        .output()
        .unwrap_or_else(|err| panic!("cannot run {cmd:?}: {err}"));
    if !status.success() {
        // The nested compiler's own output, so that errors in the eBPF code read as usual.
        eprintln!("{}", String::from_utf8_lossy(&stderr));
        println!(
            "cargo:warning=building the XDP program ({EBPF_PACKAGE}) failed: its compiler output is under `--- stderr` below"
        );
        panic!(
            "`cargo {NIGHTLY} build --package {EBPF_PACKAGE} --target {target}` failed ({status}), \
             with bpf-linker {}",
            linker.display()
        );
    }
    assert!(
        object.is_file(),
        "the eBPF build succeeded but {} is missing",
        object.display()
    );
    println!("cargo:rustc-env={OBJECT_ENV}={}", object.display());
}

/// Removes what the outer cargo set for this build script (or the user set for the host
/// build) and would otherwise steer the nested build: compiler and wrappers, flags, target
/// and target directory, profile settings, `CARGO_CFG_*` of the host target, toolchain.
fn clean_env(cmd: &mut Command) {
    const KEEP: &[&str] = &[
        "CARGO_HOME",
        "CARGO_MAKEFLAGS", // the outer jobserver: the nested build shares its job slots
        "CARGO_NET_",
        "CARGO_HTTP_",
        "CARGO_REGISTRY_",
        "CARGO_REGISTRIES_",
        "CARGO_TERM_",
    ];
    const SCRIPT_VARS: &[&str] = &[
        "TARGET",
        "HOST",
        "OUT_DIR",
        "PROFILE",
        "OPT_LEVEL",
        "DEBUG",
        "NUM_JOBS",
        "RUSTFLAGS",
    ];
    for (key, _) in env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        let remove = (key.starts_with("CARGO") && !KEEP.iter().any(|k| key.starts_with(k)))
            || key.starts_with("RUSTC")
            || key.starts_with("RUSTDOC")
            || key.starts_with("RUSTUP_TOOLCHAIN")
            || SCRIPT_VARS.contains(&key);
        if remove {
            cmd.env_remove(key);
        }
    }
}

fn prepend_path(dir: &Path) -> OsString {
    let mut dirs = vec![dir.to_path_buf()];
    if let Some(path) = env::var_os("PATH") {
        dirs.extend(env::split_paths(&path));
    }
    env::join_paths(dirs).expect("PATH entries contain no ':'")
}

/// `$XLB_BPF_LINKER`, else `bpf-linker` on PATH, else `target/tools/bpf-linker-llvm-*/`.
fn find_bpf_linker(workspace: &Path) -> Option<PathBuf> {
    if let Some(linker) = env::var_os(LINKER_ENV) {
        let linker = PathBuf::from(linker);
        assert!(
            linker.is_file(),
            "{LINKER_ENV}={} is not a file",
            linker.display()
        );
        return Some(linker);
    }
    if let Some(path) = env::var_os("PATH") {
        if let Some(linker) = env::split_paths(&path)
            .map(|dir| dir.join("bpf-linker"))
            .find(|p| p.is_file())
        {
            return Some(linker);
        }
    }
    let tools = workspace.join("target").join("tools");
    let mut found: Vec<(String, PathBuf)> = fs::read_dir(&tools)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let llvm = name.strip_prefix("bpf-linker-llvm-")?.to_owned();
            let bin = entry.path().join("bin").join("bpf-linker");
            bin.is_file().then_some((llvm, bin))
        })
        .collect();
    if found.len() > 1 {
        // Several toolchains came and went: take the linker built for the nightly's LLVM.
        if let Some(llvm) = nightly_llvm_version() {
            if let Some(i) = found.iter().position(|(v, _)| *v == llvm) {
                return Some(found.swap_remove(i).1);
            }
        }
    }
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

fn nightly_llvm_version() -> Option<String> {
    let mut cmd = Command::new("rustc");
    cmd.args([OsStr::new(NIGHTLY), OsStr::new("-vV")]);
    clean_env(&mut cmd);
    let out = cmd.output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix("LLVM version:"))
        .map(|v| v.trim().to_owned())
}
