//! The `Examples:` section at the end of each subcommand's `--help` (and
//! of the man page), one constant per subcommand.  DIR is a checkpoint
//! directory (`criu dump -D DIR`), PID a process in it.

/// `crit` itself.
pub const CRIT: &str = "\
Examples:
  crit show DIR/core-1.img                         an image as indented JSON
  crit x DIR ps                                    the process tree of a checkpoint
  crit check DIR                                   is it complete and consistent?

`crit COMMAND --help` tells a command's options, with examples; `crit man` prints the manual.";

/// `crit decode`.
pub const DECODE: &str = "\
Examples:
  crit decode -i DIR/files.img -o files.json       an image to crit's JSON, in a file
  crit decode -i DIR/core-1.img -f nice            indented, with hex and flag names
  crit decode < DIR/pstree.img | jq '.entries[].pid'";

/// `crit encode`.
pub const ENCODE: &str = "\
Examples:
  crit encode -i files.json -o DIR/files.img       an (edited) JSON image back to binary
  crit decode -i a.img | crit encode > b.img       a round trip: b.img is a.img, byte for byte";

/// `crit info`.
pub const INFO: &str = "\
Examples:
  crit info DIR/pagemap-1.img                      the image's magic and number of entries
  crit info --criu-version DIR                     the oldest CRIU that could have written DIR";

/// `crit completions`.
pub const COMPLETIONS: &str = "\
Examples:
  crit completions bash > /etc/bash_completion.d/crit
  crit completions zsh > /usr/local/share/zsh/site-functions/_crit
  crit completions fish > ~/.config/fish/completions/crit.fish";

/// `crit man`.
pub const MAN: &str = "\
Examples:
  crit man | man -l -                              read it now
  crit man > /usr/local/share/man/man1/crit.1      install it";

/// `crit convert`.
pub const CONVERT: &str = "\
Examples:
  crit convert --to 4.1 DIR DIR-4.1                a CRIU 4.2 dump for CRIU 4.1 to restore
  crit convert --to 4.2 --force OLD NEW            also the steps refused by default";

/// `crit check`.
pub const CHECK: &str = "\
Examples:
  crit check DIR && criu restore -D DIR            restore only a checkpoint that checks clean
  crit check --json checkpoint.tar.gz              a container checkpoint archive, as JSON";

/// `crit x`.
pub const X: &str = "\
Examples:
  crit x DIR ps                                    the process tree (as crit prints it)
  crit x DIR tree                                  with threads, credentials, command lines
  crit x DIR sk --json                             every socket, as JSON";

/// `crit stats`.
pub const STATS: &str = "\
Examples:
  crit stats DIR
  crit stats --json checkpoint.tar.zst             a container checkpoint archive, as JSON";

/// `crit serve`.
pub const SERVE: &str = "\
Examples:
  crit serve DIR & criu restore --stream -D DIR    restore from binary or JSON images
  crit serve DIR --set 'core-1.img:entries.0.tc.comm=\"renamed\"'
                                                   change a value on the way";

/// `crit capture`.
pub const CAPTURE: &str = "\
Examples:
  crit capture DIR & criu dump --stream -t PID -D DIR
  crit capture --json DIR & criu dump --stream -t PID -D DIR
                                                   write the images as crit JSON";

/// `crit mem`.
pub const MEM: &str = "\
Examples:
  crit mem DIR PID                                 the mappings and what was dumped of each
  crit mem DIR PID --addr 0x7f0000001000 --len 4K --hex
  crit mem DIR PID --search password --context 16
  crit mem DIR PID --kind heap --extract out/      the heap's bytes into out/START-END.bin";

/// `crit core`.
pub const CORE: &str = "\
Examples:
  crit core DIR -o cores/ && gdb /path/to/binary cores/core.PID
  crit core DIR -p PID --files-root /mnt/rootfs    mapped files from a copy of the dumped system";

/// `crit show`.
pub const SHOW: &str = "\
Examples:
  crit show DIR/core-1.img                         an image as indented JSON
  crit show --nopl DIR/pipes-data.img              payload sizes instead of payloads";
