//! `cargo xtask install [--prefix /usr/local] [--destdir DIR] [--debug]`: xlb as a system
//! service, and the check of such an install that `cargo xtask test` runs.
//!
//! What goes where ([`files`]; `cargo xtask deb` packs the same list, see `deb`):
//! - `PREFIX/sbin/xlb`, built with the XDP object embedded (release unless `--debug`);
//! - `PREFIX/lib/systemd/system/xlb.service`, `lb-userspace/dist/xlb.service` with its
//!   `/usr/sbin/xlb` made `PREFIX/sbin/xlb` (systemd reads /usr/local/lib/systemd/system);
//! - `PREFIX/share/man/man8/xlb*.8`, generated from the CLI (`xlb generate-man`);
//! - `/etc/xlb/xlb.toml.sample`, the annotated example. `/etc/xlb/xlb.toml` is never
//!   written: the operator makes it from the sample (and the unit's `xlb check` refuses
//!   to start without it);
//! - `/etc/logrotate.d/xlb`, for `--log-file /var/log/xlb/xlb.log`.
//!
//! Every path is under DESTDIR when one is given (staging, packaging, the test).

use std::{
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, bail};

use crate::{
    build::build_xlb,
    setup::{Tools, setup},
    util::{on_path, output, step, target_dir, workspace_root},
};

const TASK: &str = "install";

/// The unit, sample config and logrotate snippet, in the repository.
pub const UNIT_SOURCE: &str = "lb-userspace/dist/xlb.service";
pub const SAMPLE_SOURCE: &str = "lb-userspace/examples/xlb.toml";
pub const LOGROTATE_SOURCE: &str = "lb-userspace/dist/xlb.logrotate";
/// The binary's path in the repository's unit and logrotate snippet.
const DIST_SBIN: &str = "/usr/sbin/xlb";

/// What `cargo xtask install` was asked.
pub struct InstallArgs {
    pub prefix: PathBuf,
    pub destdir: Option<PathBuf>,
    pub release: bool,
    /// Run [`check`] after installing.
    pub check: bool,
}

/// Where things go: system paths, and the same under DESTDIR.
#[derive(Clone, Debug)]
pub struct Layout {
    pub prefix: PathBuf,
    pub destdir: PathBuf,
}

impl Layout {
    pub fn new(prefix: &Path, destdir: Option<&Path>) -> Result<Self> {
        if !prefix.is_absolute() {
            bail!("--prefix {} is not an absolute path", prefix.display());
        }
        Ok(Self {
            prefix: prefix.to_path_buf(),
            destdir: destdir.map_or_else(|| PathBuf::from("/"), Path::to_path_buf),
        })
    }

    /// `path` (absolute, as the installed system sees it) under DESTDIR.
    pub fn staged(&self, path: &Path) -> PathBuf {
        self.destdir.join(path.strip_prefix("/").unwrap_or(path))
    }

    pub fn sbin(&self) -> PathBuf {
        self.prefix.join("sbin/xlb")
    }

    pub fn unit(&self) -> PathBuf {
        self.prefix.join("lib/systemd/system/xlb.service")
    }

    pub fn man_dir(&self) -> PathBuf {
        self.prefix.join("share/man/man8")
    }

    pub fn sample(&self) -> PathBuf {
        PathBuf::from("/etc/xlb/xlb.toml.sample")
    }

    pub fn config(&self) -> PathBuf {
        PathBuf::from("/etc/xlb/xlb.toml")
    }

    pub fn logrotate(&self) -> PathBuf {
        PathBuf::from("/etc/logrotate.d/xlb")
    }
}

/// `text` (the repository's unit or logrotate snippet) with the binary at `sbin`.
pub fn with_sbin(text: &str, sbin: &Path) -> String {
    text.replace(DIST_SBIN, &sbin.to_string_lossy())
}

/// One installed file: where (system path), from what, mode.
pub struct File {
    pub path: PathBuf,
    pub mode: u32,
}

/// The files an install puts down (the man pages as the generator names them).
pub fn files(layout: &Layout, man_pages: &[String]) -> Vec<File> {
    let mut files = vec![
        File {
            path: layout.sbin(),
            mode: 0o755,
        },
        File {
            path: layout.unit(),
            mode: 0o644,
        },
        File {
            path: layout.sample(),
            mode: 0o644,
        },
        File {
            path: layout.logrotate(),
            mode: 0o644,
        },
    ];
    files.extend(man_pages.iter().map(|page| File {
        path: layout.man_dir().join(page),
        mode: 0o644,
    }));
    files
}

pub fn install(args: &InstallArgs) -> Result<()> {
    let tools = setup()?;
    let layout = Layout::new(&args.prefix, args.destdir.as_deref())?;
    install_with(&tools, &layout, args.release)?;
    if args.check {
        check(&layout)?;
    }
    if layout.destdir == Path::new("/") {
        if !layout.config().exists() {
            step(
                TASK,
                format!(
                    "next: cp {} {} and edit it; `xlb check` validates it",
                    layout.sample().display(),
                    layout.config().display()
                ),
            );
        }
        step(
            TASK,
            "then: systemctl daemon-reload && systemctl enable --now xlb",
        );
    }
    Ok(())
}

/// Builds xlb and installs every file of [`files`] under `layout`.
pub fn install_with(tools: &Tools, layout: &Layout, release: bool) -> Result<()> {
    let xlb = build_xlb(tools, release)?;
    let root = workspace_root();
    step(
        TASK,
        format!(
            "into {} (prefix {})",
            layout.destdir.display(),
            layout.prefix.display()
        ),
    );
    put(layout, &layout.sbin(), 0o755, |to| {
        fs::copy(&xlb, to).map(drop)
    })?;
    let unit = read(&root.join(UNIT_SOURCE))?;
    put(layout, &layout.unit(), 0o644, |to| {
        fs::write(to, with_sbin(&unit, &layout.sbin()))
    })?;
    let sample = read(&root.join(SAMPLE_SOURCE))?;
    put(layout, &layout.sample(), 0o644, |to| fs::write(to, &sample))?;
    let logrotate = read(&root.join(LOGROTATE_SOURCE))?;
    put(layout, &layout.logrotate(), 0o644, |to| {
        fs::write(to, with_sbin(&logrotate, &layout.sbin()))
    })?;
    let man_dir = layout.staged(&layout.man_dir());
    for page in generate_man(&xlb, &man_dir)? {
        fs::set_permissions(&page, fs::Permissions::from_mode(0o644))?;
        println!("  {}", page.display());
    }
    Ok(())
}

/// Runs `xlb generate-man DIR`; the pages written.
pub fn generate_man(xlb: &Path, dir: &Path) -> Result<Vec<PathBuf>> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let listing = output(Command::new(xlb).arg("generate-man").arg(dir))?;
    Ok(listing.lines().map(PathBuf::from).collect())
}

fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Writes one file under DESTDIR through `write`, with its directory, then its mode.
fn put(
    layout: &Layout,
    path: &Path,
    mode: u32,
    write: impl FnOnce(&Path) -> std::io::Result<()>,
) -> Result<()> {
    let to = layout.staged(path);
    let dir = to.parent().expect("an installed file has a directory");
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    write(&to).with_context(|| format!("cannot write {}", to.display()))?;
    fs::set_permissions(&to, fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot chmod {}", to.display()))?;
    println!("  {}", to.display());
    Ok(())
}

/// The test `cargo xtask test` runs: a debug install into a temporary DESTDIR, then
/// [`check`] on it, then the directory removed.
pub fn self_test(tools: &Tools) -> Result<()> {
    let destdir = target_dir().join("install-test");
    let _ = fs::remove_dir_all(&destdir);
    let layout = Layout::new(Path::new("/usr/local"), Some(&destdir))?;
    install_with(tools, &layout, false)?;
    check(&layout)?;
    fs::remove_dir_all(&destdir).with_context(|| format!("cannot remove {}", destdir.display()))?;
    Ok(())
}

/// Checks an install as a user would use it: the installed binary runs and accepts the
/// installed sample, the man pages exist and render, the unit verifies.
pub fn check(layout: &Layout) -> Result<()> {
    let man_dir = layout.staged(&layout.man_dir());
    let mut pages: Vec<String> = fs::read_dir(&man_dir)
        .with_context(|| format!("cannot list {}", man_dir.display()))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    for file in files(layout, &pages) {
        let staged = layout.staged(&file.path);
        let mode = fs::metadata(&staged)
            .with_context(|| format!("{} was not installed", staged.display()))?
            .permissions()
            .mode()
            & 0o7777;
        if mode != file.mode {
            bail!(
                "{} has mode {mode:o}, not {:o}",
                staged.display(),
                file.mode
            );
        }
    }
    step(
        TASK,
        format!(
            "check: {} files, modes as meant: {}",
            4 + pages.len(),
            pages.join(" ")
        ),
    );

    let xlb = layout.staged(&layout.sbin());
    let version = output(Command::new(&xlb).arg("--version"))?;
    let want = format!("xlb {}", env!("CARGO_PKG_VERSION"));
    if version.trim() != want {
        bail!(
            "{} --version printed {version:?}, not {want:?}",
            xlb.display()
        );
    }
    step(TASK, format!("check: `xlb --version`: {}", version.trim()));

    let sample = layout.staged(&layout.sample());
    let checked = output(
        Command::new(&xlb)
            .args(["check", "--no-host-checks", "-c"])
            .arg(&sample),
    )?;
    if !checked.contains(": OK (") {
        bail!("xlb check on the sample: {checked}");
    }
    step(
        TASK,
        format!("check: `xlb check` on the sample: {}", checked.trim()),
    );

    for page in ["xlb.8", "xlb-run.8", "xlb-check.8", "xlb-status.8"] {
        let path = man_dir.join(page);
        if !path.is_file() {
            bail!("no man page {}", path.display());
        }
    }
    let run_page = man_dir.join("xlb-run.8");
    let rendered = if on_path("man").is_some() {
        output(
            Command::new("man")
                .arg("-l")
                .arg(&run_page)
                .env("MANPAGER", "cat")
                .env("MANWIDTH", "80"),
        )?
    } else if on_path("groff").is_some() {
        output(
            Command::new("groff")
                .args(["-man", "-Tutf8"])
                .arg(&run_page),
        )?
    } else {
        step(
            TASK,
            "check: neither man nor groff here: pages not rendered",
        );
        String::from("--log-file")
    };
    if !rendered.contains("--log-file") && !rendered.contains("‐‐log‐file") {
        bail!("xlb-run(8) does not render --log-file:\n{rendered}");
    }
    step(TASK, "check: the man pages exist and xlb-run(8) renders");

    verify_unit(layout)
}

/// `systemd-analyze verify` on the installed unit, when systemd-analyze is here. Its
/// ExecStart names the binary as the installed system will see it; a copy whose paths
/// name the staged binary is verified (systemd-analyze's --root finds no targets).
fn verify_unit(layout: &Layout) -> Result<()> {
    if on_path("systemd-analyze").is_none() {
        step(TASK, "check: no systemd-analyze here: unit not verified");
        return Ok(());
    }
    let installed = read(&layout.staged(&layout.unit()))?;
    let dir = std::env::temp_dir().join(format!("xlb-verify-{}", std::process::id()));
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let unit = dir.join("xlb.service");
    let staged_sbin = layout.staged(&layout.sbin());
    fs::write(
        &unit,
        installed.replace(
            &*layout.sbin().to_string_lossy(),
            &staged_sbin.to_string_lossy(),
        ),
    )?;
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&unit)
        .output()
        .context("cannot run systemd-analyze");
    let _ = fs::remove_dir_all(&dir);
    let out = out?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() || !said.trim().is_empty() {
        bail!(
            "systemd-analyze verify {}: {}\n{said}",
            layout.staged(&layout.unit()).display(),
            out.status
        );
    }
    step(TASK, "check: systemd-analyze verify on the unit: clean");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_the_prefix_and_land_under_destdir() {
        let l = Layout::new(Path::new("/usr/local"), Some(Path::new("/tmp/stage"))).unwrap();
        assert_eq!(l.sbin(), Path::new("/usr/local/sbin/xlb"));
        assert_eq!(
            l.staged(&l.unit()),
            Path::new("/tmp/stage/usr/local/lib/systemd/system/xlb.service")
        );
        assert_eq!(
            l.staged(&l.sample()),
            Path::new("/tmp/stage/etc/xlb/xlb.toml.sample")
        );
        assert!(Layout::new(Path::new("usr"), None).is_err());
        let root = Layout::new(Path::new("/usr"), None).unwrap();
        assert_eq!(root.staged(&root.sbin()), Path::new("/usr/sbin/xlb"));
    }

    #[test]
    fn the_unit_names_the_installed_binary_everywhere() {
        let unit = read(&workspace_root().join(UNIT_SOURCE)).unwrap();
        assert_eq!(
            unit.matches(DIST_SBIN).count(),
            3,
            "ExecStartPre, ExecStart, ExecReload"
        );
        let local = with_sbin(&unit, Path::new("/usr/local/sbin/xlb"));
        assert!(!local.contains("/usr/sbin/xlb"));
        assert!(local.contains("ExecStart=/usr/local/sbin/xlb run -c /etc/xlb/xlb.toml"));
        assert!(local.contains("ExecReload=/usr/local/sbin/xlb reload"));
    }

    /// `cargo xtask deb` packs what `install` installs (prefix /usr): the assets of
    /// lb-userspace's `[package.metadata.deb]` go to the same places.
    #[test]
    fn the_deb_holds_the_same_files_as_an_install() {
        let cargo = read(&workspace_root().join("lb-userspace/Cargo.toml")).unwrap();
        let layout = Layout::new(Path::new("/usr"), None).unwrap();
        let mut want: Vec<String> = files(&layout, &[])
            .iter()
            .filter(|f| f.path != layout.unit())
            .map(|f| f.path.to_string_lossy().trim_start_matches('/').to_string())
            .collect();
        want.push("usr/share/man/man8/".into());
        for dest in want {
            let dest = if dest.ends_with("sbin/xlb") {
                "usr/sbin/".to_string()
            } else {
                dest
            };
            assert!(
                cargo.contains(&format!("\"{dest}\"")),
                "{dest} missing from the deb's assets"
            );
        }
        assert!(cargo.contains("unit-scripts = \"dist/\""), "the unit");
    }
}
