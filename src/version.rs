//! CRIU releases, and what in a checkpoint shows which release at least
//! wrote it: one table each for image files and inventory fields, read by
//! `check` (its evidence) and `convert` (`info --criu-version`).

use std::fmt;

use crate::error::{Error, Result};

/// A CRIU release, as `MAJOR.MINOR`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Hash)]
pub struct Version(pub u16, pub u16);

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

impl std::str::FromStr for Version {
    type Err = Error;
    fn from_str(s: &str) -> Result<Version> {
        let mut it = s.trim().split('.');
        let bad = || Error::value(format!("{s:?} is not a CRIU version (MAJOR.MINOR)"));
        let major = it.next().and_then(|x| x.parse().ok()).ok_or_else(bad)?;
        let minor = it.next().and_then(|x| x.parse().ok()).ok_or_else(bad)?;
        // A patch level (4.1.1) has the layout of its minor release.
        if let Some(p) = it.next() {
            p.parse::<u16>().map_err(|_| bad())?;
        }
        Ok(Version(major, minor))
    }
}

/// Image files (by name prefix) and the CRIU release that introduced them.
pub(crate) static IMAGES_SINCE: &[(&str, Version)] = &[
    ("pidfd.img", Version(4, 1)),
    ("apparmor.img", Version(3, 16)),
    ("bpfmap-file.img", Version(3, 15)),
    ("bpfmap-data.img", Version(3, 15)),
    ("pidns-", Version(3, 15)),
    ("memfd.img", Version(3, 14)),
    ("timens-", Version(3, 14)),
    ("nftables-", Version(3, 14)),
    ("files.img", Version(3, 4)),
];

/// Inventory fields and the CRIU release that introduced them.
pub(crate) static INVENTORY_SINCE: &[(&str, Version)] = &[
    ("allow_uprobes", Version(4, 2)),
    ("dump_criu_run_id", Version(4, 1)),
    ("plugins_entry", Version(4, 1)),
    ("network_lock_method", Version(3, 16)),
    ("tcp_close", Version(3, 15)),
    ("pre_dump_mode", Version(3, 14)),
    ("dump_uptime", Version(3, 10)),
];
