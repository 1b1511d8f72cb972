//! The pass-through XDP program on a lab's switch ports, for labs only (tests, demo, bench).
//!
//! A veth hands frames sent with `XDP_TX` / `XDP_REDIRECT` to its peer only when the peer
//! runs an XDP program itself; in a lab the director's veth peer sits on a bridge, so the
//! lab puts xlb's `xlb_pass` program there. The link is pinned so it outlives the loader;
//! deleting the namespace (or the pin) detaches it. [`crate::netns::Lab::pass_xdp`] runs
//! this inside the switch's namespace.

use std::{fmt, path::Path};

use aya::{
    EbpfError, EbpfLoader,
    pin::PinError,
    programs::{ProgramError, Xdp, XdpMode, links::FdLink, links::LinkError},
};
use lb_common::{PASS_PROGRAM_NAME, map_names};

/// Why the pass-through program could not be attached.
#[derive(Debug)]
pub enum XdpPassError {
    Load(EbpfError),
    MissingProgram,
    Program {
        ifname: String,
        source: ProgramError,
    },
    Link(LinkError),
    Pin(PinError),
}

impl fmt::Display for XdpPassError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Load(e) => write!(f, "loading xlb's XDP object: {e}"),
            Self::MissingProgram => write!(f, "{PASS_PROGRAM_NAME} missing from the object"),
            Self::Program { ifname, source } => {
                write!(f, "attaching {PASS_PROGRAM_NAME} to {ifname}: {source}")
            }
            Self::Link(e) => write!(f, "taking the XDP link: {e}"),
            Self::Pin(e) => write!(f, "pinning the XDP link: {e}"),
        }
    }
}

impl std::error::Error for XdpPassError {}

/// Attaches `xlb_pass` (from the object embedded in xlb) to `ifname` in the calling
/// thread's network namespace, and pins the link at `pin`.
pub fn attach(ifname: &str, pin: &Path) -> Result<(), XdpPassError> {
    let program_error = |source| XdpPassError::Program {
        ifname: ifname.to_string(),
        source,
    };
    let mut loader = EbpfLoader::new();
    // The object's maps are not used by this program: keep them tiny.
    for name in map_names::ALL {
        loader.map_max_entries(name, 1);
    }
    let mut ebpf = loader
        .load(xlb::dataplane::OBJECT)
        .map_err(XdpPassError::Load)?;
    let program: &mut Xdp = ebpf
        .program_mut(PASS_PROGRAM_NAME)
        .ok_or(XdpPassError::MissingProgram)?
        .try_into()
        .map_err(program_error)?;
    program.load().map_err(program_error)?;
    let id = program
        .attach(ifname, XdpMode::Driver)
        .map_err(program_error)?;
    let link = program.take_link(id).map_err(program_error)?;
    FdLink::try_from(link)
        .map_err(XdpPassError::Link)?
        .pin(pin)
        .map_err(XdpPassError::Pin)?;
    Ok(())
}
