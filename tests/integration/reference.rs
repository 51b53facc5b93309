//! Live comparisons with the reference tools, when scripts/reference-tools.sh
//! can install them (CI does): the same outputs as the committed goldens,
//! produced now by the real crit 4.1.1 on the fixtures it made.

use crate::util::*;

#[test]
fn live_reference_crit_agrees_on_criu41_fixtures() {
    let Some(r) = reference() else { return };
    let mut n = 0;
    for fx in fixtures() {
        if !fx.file_name().unwrap().to_string_lossy().starts_with("criu41-") {
            continue;
        }
        for img in images(&fx) {
            if is_raw_image(&img) {
                continue;
            }
            let data = std::fs::read(&img).unwrap();
            if data.is_empty() {
                continue;
            }
            let out = std::process::Command::new(r.crit()).args(["decode", "-i"]).arg(&img).output().unwrap();
            if !out.status.success() {
                // crit fails on some kinds (listed deviations); covered by golden.rs.
                continue;
            }
            if shm_in_pagemaps(&data) {
                continue;
            }
            let mut ours = decode_bytes(&data, false, false).unwrap();
            ours.push(b'\n');
            let mut theirs = String::from_utf8_lossy(&out.stdout).into_owned();
            if theirs.starts_with("{\"magic\": \"PAGEMAP\"") {
                // crit 4.1.1's schema names pagemap field 2 `nr_pages`;
                // 4.2 (ours) calls it `compat_nr_pages` (4.1.1 images have
                // no field 5).
                theirs = theirs.replace("\"nr_pages\": ", "\"compat_nr_pages\": ");
            }
            assert_eq!(String::from_utf8_lossy(&ours), theirs, "{}", img.display());
            n += 1;
        }
    }
    assert!(n > 20, "only {n} images compared");
}
