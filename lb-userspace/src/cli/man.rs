//! Man pages generated from the command-line definition (`xlb generate-man DIR`, hidden;
//! `cargo xtask install` and `cargo xtask deb` call it), so the CLI is described in one
//! place: `xlb(8)` and one page per subcommand (`xlb-run(8)`, `xlb-realserver-setup(8)`,
//! ...). Section 8, as for keepalived and ipvsadm: system administration commands.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The man section of every page.
pub const SECTION: &str = "8";

/// Writes `xlb.8` and one page per visible subcommand, recursively, into `dir` (created
/// if missing). Returns the files written.
pub fn generate(cmd: clap::Command, dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    let mut written = Vec::new();
    write_pages(cmd, dir, &mut written)?;
    written.sort();
    Ok(written)
}

fn write_pages(cmd: clap::Command, dir: &Path, written: &mut Vec<PathBuf>) -> Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub.clone(), dir, written)?;
    }
    let page = clap_mangen::Man::new(cmd)
        .section(SECTION)
        .manual("System Manager's Manual")
        .source(format!("xlb {}", env!("CARGO_PKG_VERSION")));
    let path = page
        .generate_to(dir)
        .with_context(|| format!("writing a man page into {}", dir.display()))?;
    written.push(path);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_page_per_visible_subcommand_with_the_options() {
        let cmd = clap::Command::new("xlb")
            .subcommand(
                clap::Command::new("run").arg(
                    clap::Arg::new("log-file")
                        .long("log-file")
                        .help("Append the log to FILE"),
                ),
            )
            .subcommand(clap::Command::new("realserver").subcommand(clap::Command::new("setup")))
            .subcommand(clap::Command::new("generate-man").hide(true));
        let dir = std::env::temp_dir().join(format!("xlb-man-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let pages = generate(cmd, &dir).unwrap();
        let names: Vec<String> = pages
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "xlb-realserver-setup.8",
                "xlb-realserver.8",
                "xlb-run.8",
                "xlb.8"
            ]
        );
        let run = std::fs::read_to_string(dir.join("xlb-run.8")).unwrap();
        assert!(run.contains(".TH xlb-run 8"), "{run}");
        assert!(run.contains("log\\-file"), "{run}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
