//! End to end with the real CRIU (the reference 4.1.1, root only): dump a
//! process, edit its image through our JSON, restore it, and see the edit
//! in the live process.

use std::process::Command;

use crate::util::*;

#[test]
fn edited_comm_survives_restore() {
    if !is_root() {
        eprintln!("SKIP: needs root to dump and restore with CRIU");
        return;
    }
    let Some(r) = reference() else { return };
    let tmp = TempDir::new("e2e");
    let dir = tmp.path();
    let (mut child, pid) = spawn_sleep();
    let dump = Command::new(r.criu())
        .args(["dump", "-t", &pid.to_string(), "-v4", "-o", "dump.log", "-D"])
        .arg(dir)
        .output()
        .unwrap();
    if !dump.status.success() {
        let _ = child.kill();
        let _ = child.wait();
        let log = std::fs::read_to_string(dir.join("dump.log")).unwrap_or_default();
        panic!("criu dump failed:\n{}", log.lines().filter(|l| l.contains("Error")).collect::<Vec<_>>().join("\n"));
    }
    // The dumped task is killed; reap it so its pid is free for restore.
    let _ = child.wait();

    let core = dir.join(format!("core-{pid}.img"));
    let json = dir.join("core.json");
    let o = crit(&["decode", "-i", core.to_str().unwrap(), "-o", json.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&json).unwrap();
    assert!(text.contains("\"comm\": \"sleep\""), "{text}");
    std::fs::write(&json, text.replace("\"comm\": \"sleep\"", "\"comm\": \"edited\"")).unwrap();
    let o = crit(&["encode", "-i", json.to_str().unwrap(), "-o", core.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let restore =
        Command::new(r.criu()).args(["restore", "-d", "-v4", "-o", "restore.log", "-D"]).arg(dir).output().unwrap();
    let log = std::fs::read_to_string(dir.join("restore.log")).unwrap_or_default();
    assert!(
        restore.status.success(),
        "criu restore failed:\n{}",
        log.lines().filter(|l| l.contains("Error")).collect::<Vec<_>>().join("\n")
    );
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    kill_and_reap(pid);
    assert_eq!(comm, "edited\n");
}
