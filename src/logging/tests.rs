use super::*;

#[test]
fn a_long_message_is_cut_not_dropped() {
    // 3000 bytes of two-byte characters, after a prefix of odd length.
    let long = "é".repeat(1500);
    let mut msg = Line::new();
    let _ = write!(Cut(&mut msg), "door: running command: {long} and more");
    assert!(msg.starts_with("door: running command: éé"), "{msg}");
    assert!(msg.ends_with("éé [cut]"), "{msg}");
    assert!(msg.len() > 2000 && msg.len() <= MSG_MAX, "{}", msg.len());
    // A sink writes it whole, with its timestamp and newline.
    let path = std::env::temp_dir().join(format!("latchkey-log-{}", std::process::id()));
    let mut f = open(&path).unwrap();
    file_line(&mut f, &mut Dropped(0), &msg);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert!(
        text.starts_with('[') && text.ends_with(&format!("{msg}\n")),
        "{text}"
    );
    // Cut in a later piece, when the line is nearly full already; what fits is untouched.
    let mut msg = Line::new();
    let _ = write!(Cut(&mut msg), "{}bcdefgh", "a".repeat(MSG_MAX - 3));
    assert_eq!(msg.len(), MSG_MAX);
    assert!(msg.ends_with("aaa [cut]"));
    let mut msg = Line::new();
    let _ = write!(Cut(&mut msg), "{}b", "a".repeat(MSG_MAX - 1));
    assert_eq!(msg.len(), MSG_MAX);
    assert!(msg.ends_with("ab"));
}

#[test]
fn a_burst_passes_then_one_line_per_refill() {
    let mut l = Limiter::new();
    let t0 = Instant::now();
    for _ in 0..BURST {
        assert_eq!(l.check(t0), Verdict::Write);
    }
    assert_eq!(l.check(t0), Verdict::Suppress);
    assert_eq!(l.check(t0 + REFILL / 2), Verdict::Suppress);
    assert_eq!(l.check(t0 + REFILL), Verdict::Write);
    assert_eq!(l.check(t0 + REFILL), Verdict::Suppress);
    // Half-earned lines are not lost by checking often.
    for i in 1..=10u32 {
        let _ = l.check(t0 + REFILL + REFILL * i / 10);
    }
    assert_eq!(l.check(t0 + REFILL * 3), Verdict::Write);
    // A long quiet time refills the bucket, and no more than the burst.
    let later = t0 + REFILL * (BURST * 10);
    for _ in 0..BURST {
        assert_eq!(l.check(later), Verdict::Write);
    }
    assert_eq!(l.check(later), Verdict::Suppress);
}

#[test]
fn a_flood_is_announced_at_once_then_counted_periodically() {
    let mut l = Limiter::new();
    let t0 = Instant::now();
    assert_eq!(l.due(t0), None);
    // 100 lines a second for 3 minutes.
    let mut written = 0u64;
    let mut reports = Vec::new();
    for i in 0..18_000u32 {
        let t = t0 + Duration::from_millis(10) * i;
        if l.check(t) == Verdict::Write {
            written += 1;
        }
        if let Some(r) = l.due(t) {
            reports.push((t - t0, r));
        }
    }
    // The burst, then one a second.
    assert!(
        (BURST as u64 + 178..=BURST as u64 + 180).contains(&written),
        "{written}"
    );
    assert_eq!(
        reports[0],
        (Duration::from_millis(10 * BURST as u64), Report::Started)
    );
    assert_eq!(reports.len(), 3, "{reports:?}");
    let mut counted = 0;
    for (at, r) in &reports[1..] {
        let Report::Count(n) = r else { panic!("{r:?}") };
        assert!(*n > 5000, "{n}");
        assert!(at.as_secs() % REPORT_EVERY.as_secs() == 0, "{at:?}");
        counted += n;
    }
    assert_eq!(counted + l.take() + written, 18_000);
    // Quiet for a report period: the round ends, the next flood is announced again.
    let mut l = Limiter::new();
    for _ in 0..=BURST {
        let _ = l.check(t0);
    }
    assert_eq!(l.due(t0), Some(Report::Started));
    assert_eq!(l.due(t0 + REPORT_EVERY), Some(Report::Count(1)));
    assert_eq!(l.due(t0 + REPORT_EVERY * 2), None);
    let t2 = t0 + REPORT_EVERY * 3;
    for _ in 0..=BURST {
        let _ = l.check(t2);
    }
    assert_eq!(l.due(t2), Some(Report::Started));
}
