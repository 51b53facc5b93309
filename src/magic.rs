//! The magic registry: one table of every image kind CRIU writes.
//!
//! Each row gives the JSON name (crit's), the type magic of
//! `criu/include/magic.h`, the head magic written before it, the file names
//! CRIU gives such images, and how the body is laid out (the entry message
//! and the payload that follows each entry).  Everything else in the codec is
//! driven by this table.

use crate::schema::{msg, MsgId};

/// `IMG_COMMON_MAGIC`: head magic of almost every image of a v1.1 set.
pub const IMG_COMMON: u32 = 0x5456_4319;
/// `IMG_SERVICE_MAGIC`: head magic of stats and irmap-cache images.
pub const IMG_SERVICE: u32 = 0x5510_5940;

/// The head magic written before the type magic.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Head {
    /// No head magic (inventory, and every image of a v1 set).
    None,
    /// `IMG_COMMON`.
    Common,
    /// `IMG_SERVICE`.
    Service,
}

/// What follows each entry of an image, besides the protobuf message.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Payload {
    /// Nothing.
    None,
    /// Raw bytes, as many as the named field says (pipe data, sk-queues).
    Blob(&'static str),
    /// Raw bytes, as many as the sum of two fields (bpfmap data).
    Blob2(&'static str, &'static str),
    /// `inq_len` then `outq_len` bytes (tcp-stream).
    Tcp,
    /// `nsems` u16 values padded to 8 bytes (ipcns-sem).
    Sem,
    /// `qnum` size-prefixed `ipc_msg` + data padded to 8 (ipcns-msg).
    Msg,
    /// `size` bytes padded to 4, unless `in_pagemaps` (ipcns-shm).
    Shm,
}

/// How the body of an image is laid out.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Body {
    /// A sequence of entries of one message type, each followed by a payload.
    Entries(MsgId, Payload),
    /// `pagemap_head`, then `pagemap_entry` entries.
    Pagemap,
    /// `ghost_file_entry`, then either chunks (`ghost_chunk_entry` + data)
    /// or the raw file contents up to the end.
    Ghost,
    /// Known magic whose contents are not protobuf entries.
    Undecodable,
}

/// One kind of image.
#[derive(Debug)]
pub struct ImageKind {
    /// crit's name for it (the JSON `magic`).
    pub name: &'static str,
    /// The type magic.
    pub magic: u32,
    /// The head magic CRIU writes before it in a v1.1 set.
    pub head: Head,
    /// The body layout.
    pub body: Body,
    /// File-name patterns (`%` stands for a number) of images of this kind.
    pub files: &'static [&'static str],
}

use Body::*;
use Payload as P;

macro_rules! kinds {
    ($( $name:literal $magic:literal $head:ident $body:expr, [$($f:literal),*] ;)*) => {
        /// Every image kind, in the order of `magic.h`.
        pub static KINDS: &[ImageKind] = &[
            $( ImageKind { name: $name, magic: $magic, head: Head::$head, body: $body, files: &[$($f),*] }, )*
        ];
    };
}

kinds! {
    "INVENTORY"      0x58313116 None    Entries(msg::INVENTORY_ENTRY, P::None), ["inventory.img"];
    "PSTREE"         0x50273030 Common  Entries(msg::PSTREE_ENTRY, P::None), ["pstree.img"];
    "FDINFO"         0x56213732 Common  Entries(msg::FDINFO_ENTRY, P::None), ["fdinfo-%.img"];
    "PAGEMAP"        0x56084025 Common  Pagemap, ["pagemap-%.img", "pagemap-shmem-%.img"];
    "CORE"           0x55053847 Common  Entries(msg::CORE_ENTRY, P::None), ["core-%.img"];
    "IDS"            0x54432030 Common  Entries(msg::TASK_KOBJ_IDS_ENTRY, P::None), ["ids-%.img"];
    "VMAS"           0x54123737 Common  Entries(msg::VMA_ENTRY, P::None), ["vmas-%.img"];
    "PIPES"          0x56513555 Common  Entries(msg::PIPE_ENTRY, P::None), ["pipes.img"];
    "PIPES_DATA"     0x56453709 Common  Entries(msg::PIPE_DATA_ENTRY, P::Blob("bytes")), ["pipes-data.img"];
    "FIFO"           0x58364939 Common  Entries(msg::FIFO_ENTRY, P::None), ["fifo.img"];
    "FIFO_DATA"      0x59333054 Common  Entries(msg::PIPE_DATA_ENTRY, P::Blob("bytes")), ["fifo-data.img"];
    "SIGACT"         0x55344201 Common  Entries(msg::SA_ENTRY, P::None), ["sigacts-%.img"];
    "UNIXSK"         0x54373943 Common  Entries(msg::UNIX_SK_ENTRY, P::None), ["unixsk.img"];
    "INETSK"         0x56443851 Common  Entries(msg::INET_SK_ENTRY, P::None), ["inetsk.img"];
    "PACKETSK"       0x60454618 Common  Entries(msg::PACKET_SOCK_ENTRY, P::None), ["packetsk.img"];
    "ITIMERS"        0x57464056 Common  Entries(msg::ITIMER_ENTRY, P::None), ["itimers-%.img"];
    "POSIX_TIMERS"   0x52603957 Common  Entries(msg::POSIX_TIMER_ENTRY, P::None), ["posix-timers-%.img"];
    "SK_QUEUES"      0x56264026 Common  Entries(msg::SK_PACKET_ENTRY, P::Blob("length")), ["sk-queues.img"];
    "UTSNS"          0x54473203 Common  Entries(msg::UTSNS_ENTRY, P::None), ["utsns-%.img"];
    "CREDS"          0x54023547 Common  Entries(msg::CREDS_ENTRY, P::None), ["creds-%.img"];
    "IPC_VAR"        0x53115007 Common  Entries(msg::IPC_VAR_ENTRY, P::None), ["ipcns-var-%.img"];
    "IPCNS_SHM"      0x46283044 Common  Entries(msg::IPC_SHM_ENTRY, P::Shm), ["ipcns-shm-%.img"];
    "IPCNS_MSG"      0x55453737 Common  Entries(msg::IPC_MSG_ENTRY, P::Msg), ["ipcns-msg-%.img"];
    "IPCNS_SEM"      0x59573019 Common  Entries(msg::IPC_SEM_ENTRY, P::Sem), ["ipcns-sem-%.img"];
    "REG_FILES"      0x50363636 Common  Entries(msg::REG_FILE_ENTRY, P::None), ["reg-files.img"];
    "EXT_FILES"      0x59255641 Common  Entries(msg::EXT_FILE_ENTRY, P::None), ["ext-files.img"];
    "FS"             0x51403912 Common  Entries(msg::FS_ENTRY, P::None), ["fs-%.img"];
    "MM"             0x57492820 Common  Entries(msg::MM_ENTRY, P::None), ["mm-%.img"];
    "REMAP_FPATH"    0x59133954 Common  Entries(msg::REMAP_FILE_PATH_ENTRY, P::None), ["remap-fpath.img"];
    "GHOST_FILE"     0x52583605 Common  Ghost, ["ghost-file-%.img"];
    "TCP_STREAM"     0x51465506 Common  Entries(msg::TCP_STREAM_ENTRY, P::Tcp), ["tcp-stream-%.img"];
    "EVENTFD_FILE"   0x44523722 Common  Entries(msg::EVENTFD_FILE_ENTRY, P::None), ["eventfd.img"];
    "EVENTPOLL_FILE" 0x45023858 Common  Entries(msg::EVENTPOLL_FILE_ENTRY, P::None), ["eventpoll.img"];
    "EVENTPOLL_TFD"  0x44433746 Common  Entries(msg::EVENTPOLL_TFD_ENTRY, P::None), ["eventpoll-tfd.img"];
    "SIGNALFD"       0x57323820 Common  Entries(msg::SIGNALFD_ENTRY, P::None), ["signalfd.img"];
    "INOTIFY_FILE"   0x48424431 Common  Entries(msg::INOTIFY_FILE_ENTRY, P::None), ["inotify.img"];
    "INOTIFY_WD"     0x54562009 Common  Entries(msg::INOTIFY_WD_ENTRY, P::None), ["inotify-wd.img"];
    "MNTS"           0x55563928 Common  Entries(msg::MNT_ENTRY, P::None), ["mountpoints-%.img"];
    "NETDEV"         0x57373951 Common  Entries(msg::NET_DEVICE_ENTRY, P::None), ["netdev-%.img"];
    "NETNS"          0x55933752 Common  Entries(msg::NETNS_ENTRY, P::None), ["netns-%.img"];
    "TTY_FILES"      0x59433025 Common  Entries(msg::TTY_FILE_ENTRY, P::None), ["tty.img"];
    "TTY_INFO"       0x59453036 Common  Entries(msg::TTY_INFO_ENTRY, P::None), ["tty-info.img"];
    "TTY_DATA"       0x59413026 Common  Entries(msg::TTY_DATA_ENTRY, P::None), ["tty-data.img"];
    "FILE_LOCKS"     0x54323616 Common  Entries(msg::FILE_LOCK_ENTRY, P::None), ["filelocks.img"];
    "RLIMIT"         0x57113925 Common  Entries(msg::RLIMIT_ENTRY, P::None), ["rlimit-%.img"];
    "FANOTIFY_FILE"  0x55096122 Common  Entries(msg::FANOTIFY_FILE_ENTRY, P::None), ["fanotify.img"];
    "FANOTIFY_MARK"  0x56506035 Common  Entries(msg::FANOTIFY_MARK_ENTRY, P::None), ["fanotify-mark.img"];
    "SIGNAL"         0x59255647 Common  Entries(msg::SIGINFO_ENTRY, P::None), ["signal-s-%.img", "signal-p-%.img"];
    "NETLINK_SK"     0x58005614 Common  Entries(msg::NETLINK_SK_ENTRY, P::None), ["netlinksk.img"];
    "NS_FILES"       0x61394011 Common  Entries(msg::NS_FILE_ENTRY, P::None), ["ns-files.img"];
    "TUNFILE"        0x57143751 Common  Entries(msg::TUNFILE_ENTRY, P::None), ["tunfile.img"];
    "CGROUP"         0x59383330 Common  Entries(msg::CGROUP_ENTRY, P::None), ["cgroup.img"];
    "TIMERFD"        0x50493712 Common  Entries(msg::TIMERFD_ENTRY, P::None), ["timerfd.img"];
    "CPUINFO"        0x61404013 Common  Entries(msg::CPUINFO_ENTRY, P::None), ["cpuinfo.img"];
    "USERNS"         0x55474906 Common  Entries(msg::USERNS_ENTRY, P::None), ["userns-%.img"];
    "SECCOMP"        0x64413049 Common  Entries(msg::SECCOMP_ENTRY, P::None), ["seccomp.img"];
    "BINFMT_MISC"    0x67343323 Common  Entries(msg::BINFMT_MISC_ENTRY, P::None), ["binfmt-misc.img", "binfmt-misc-%.img"];
    "AUTOFS"         0x49353943 Common  Entries(msg::AUTOFS_ENTRY, P::None), ["autofs-%.img"];
    "FILES"          0x56303138 Common  Entries(msg::FILE_ENTRY, P::None), ["files.img"];
    "MEMFD_INODE"    0x48453499 Common  Entries(msg::MEMFD_INODE_ENTRY, P::None), ["memfd.img"];
    "TIMENS"         0x43114433 Common  Entries(msg::TIMENS_ENTRY, P::None), ["timens-%.img"];
    "PIDNS"          0x61157326 Common  Entries(msg::PIDNS_ENTRY, P::None), ["pidns-%.img"];
    "BPFMAP_FILE"    0x57506142 Common  Entries(msg::BPFMAP_FILE_ENTRY, P::None), ["bpfmap-file.img"];
    "BPFMAP_DATA"    0x64324033 Common  Entries(msg::BPFMAP_DATA_ENTRY, P::Blob2("keys_bytes", "values_bytes")), ["bpfmap-data.img"];
    "APPARMOR"       0x59423047 Common  Entries(msg::APPARMOR_ENTRY, P::None), ["apparmor.img"];
    "PIDFD"          0x54435556 Common  Entries(msg::PIDFD_ENTRY, P::None), ["pidfd.img"];
    "STATS"          0x57093306 Service Entries(msg::STATS_ENTRY, P::None), ["stats-dump", "stats-restore"];
    "IRMAP_CACHE"    0x57004059 Service Entries(msg::IRMAP_CACHE_ENTRY, P::None), ["irmap-cache"];
    "KDAT"           0x57023458 Common  Undecodable, ["criu.kdat"];
    // Magic words that crit's table also holds although no image body
    // follows them: seen as a type magic they mean a damaged or v1 file.
    "IMG_COMMON"     0x54564319 Common  Undecodable, [];
    "IMG_SERVICE"    0x55105940 Common  Undecodable, [];
    "CRTOOLS_IMAGES_V1_1" 0x2 Common Undecodable, [];
}

/// Raw images CRIU writes without any magic (file-name prefixes).
pub static RAW_IMAGE_PREFIXES: &[&str] = &[
    "pages-",
    "ifaddr-",
    "route-",
    "route6-",
    "rule-",
    "iptables-",
    "ip6tables-",
    "nftables-",
    "tmpfs-",
    "netns-ct-",
    "netns-exp-",
];

/// A kind by its type magic.
pub fn by_magic(magic: u32) -> Option<&'static ImageKind> {
    KINDS.iter().find(|k| k.magic == magic)
}

/// A kind by its JSON name.
pub fn by_name(name: &str) -> Option<&'static ImageKind> {
    KINDS.iter().find(|k| k.name == name)
}

/// The kind CRIU gives a file name, if the name follows one of its patterns.
pub fn by_file_name(name: &str) -> Option<&'static ImageKind> {
    KINDS.iter().find(|k| k.files.iter().any(|p| pattern_matches(p, name)))
}

/// `%` in a pattern matches one or more hex digits (CRIU uses %u, %lu, %x).
fn pattern_matches(pattern: &str, name: &str) -> bool {
    match pattern.split_once('%') {
        None => pattern == name,
        Some((pre, post)) => {
            name.len() > pre.len() + post.len()
                && name.starts_with(pre)
                && name.ends_with(post)
                && name[pre.len()..name.len() - post.len()].bytes().all(|b| b.is_ascii_hexdigit())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_magics_are_unique() {
        for (i, a) in KINDS.iter().enumerate() {
            for b in &KINDS[i + 1..] {
                assert_ne!(a.name, b.name);
                assert_ne!(a.magic, b.magic, "{} {}", a.name, b.name);
            }
        }
    }

    #[test]
    fn file_names() {
        assert_eq!(by_file_name("core-42.img").map(|k| k.name), Some("CORE"));
        assert_eq!(by_file_name("pagemap-shmem-1234.img").map(|k| k.name), Some("PAGEMAP"));
        assert_eq!(by_file_name("ghost-file-1a.img").map(|k| k.name), Some("GHOST_FILE"));
        assert_eq!(by_file_name("stats-dump").map(|k| k.name), Some("STATS"));
        assert!(by_file_name("pages-1.img").is_none());
        assert!(by_file_name("core-.img").is_none());
    }
}
