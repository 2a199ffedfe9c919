//! Bad input gives one clear line on stderr and a non-zero status, never a panic.

mod common;
use common::vigil;

fn one_line_error(stderr: &str) {
    let lines: Vec<_> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "want one line, got: {stderr}");
    assert!(lines[0].starts_with("vigil: "), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn missing_file() {
    let (status, _, err) = vigil(&["run", "/no/such/file"]);
    assert_eq!(status, 2);
    one_line_error(&err);
    assert!(err.contains("/no/such/file"), "{err}");
}

#[test]
fn truncated_elf() {
    let image = guests::find("hello32").unwrap().image;
    let dir = std::env::temp_dir().join(format!("vigil-trunc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for cut in [4usize, 52, 200, image.len() / 2] {
        let path = dir.join(format!("cut{cut}.elf"));
        std::fs::write(&path, &image[..cut]).unwrap();
        let (status, _, err) = vigil(&["run", path.to_str().unwrap()]);
        assert_eq!(status, 2, "cut at {cut}: {err}");
        one_line_error(&err);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn not_multiboot() {
    let dir = std::env::temp_dir().join(format!("vigil-nomb-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("garbage.bin");
    std::fs::write(&path, vec![0x5Au8; 9000]).unwrap();
    let (status, _, err) = vigil(&["run", path.to_str().unwrap()]);
    assert_eq!(status, 2);
    one_line_error(&err);
    assert!(err.contains("multiboot"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unknown_guest_and_bad_memory() {
    let (status, _, err) = vigil(&["run", "--guest", "nope"]);
    assert_eq!(status, 2);
    one_line_error(&err);
    let (status, _, _) = vigil(&["run", "--memory", "0", "--guest", "hello32"]);
    assert_eq!(status, 2);
}
