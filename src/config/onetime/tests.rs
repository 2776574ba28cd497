use super::*;

fn temp(name: &str, bytes: &[u8]) -> PathBuf {
    let p = std::env::temp_dir().join(format!("lk-onetime-{}-{name}", std::process::id()));
    std::fs::write(&p, bytes).expect("write temp file");
    p
}

#[test]
fn marks_the_right_byte_after_non_utf8_text() {
    // A Latin-1 comment: lossy decoding would turn its byte into 3, shifting offsets.
    let p = temp("latin1", b"# caf\xe9\n  1000,2000\n3000\n");
    let (one, seq) = OneTime::open(&p).expect("parses");
    assert_eq!(seq.len(), 2);
    assert_eq!(one.line, 2);
    mark_used(&one).expect("marks");
    assert_eq!(
        std::fs::read(&p).expect("read"),
        b"# caf\xe9\n  #000,2000\n3000\n"
    );
    let (one, seq) = OneTime::open(&p).expect("parses");
    assert_eq!((one.line, seq.len()), (3, 1));
    std::fs::remove_file(&p).expect("cleanup");
}

#[test]
fn a_used_line_stays_used_when_marking_fails() {
    let p = temp("skip", b"1000,2000\n3000\n");
    let (one, _) = OneTime::open(&p).expect("parses");
    // The file changed under us: marking refuses rather than writing a stray '#'.
    std::fs::write(&p, b"9000,2000\n3000\n").expect("rewrite");
    assert!(mark_used(&one).is_err());
    let used = [one.offset.expect("live line")];
    let (next, seq) = OneTime::open_skipping(&p, &used).expect("parses");
    assert_eq!((next.line, seq.len()), (2, 1));
    std::fs::remove_file(&p).expect("cleanup");
}
