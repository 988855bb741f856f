//! Every verdict from synthetic rows: supported, contradicted, inconclusive (few seeds, straddling,
//! mixed settings), untested, and the exact basis.

use super::*;

fn row(method: &str, model: &str, seed: u64, value: f64) -> ResultRow {
    ResultRow {
        paper: "P".into(),
        source: "T1".into(),
        dataset: "Fashion-MNIST".into(),
        model: model.into(),
        method: method.into(),
        w_bits: "8".into(),
        a_bits: "8".into(),
        metric: "top1".into(),
        value,
        proxy: "small net".into(),
        profile: "full".into(),
        seed,
        epochs: 10,
        run_id: "r".into(),
    }
}

fn claim(toml_text: &str) -> Claim {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("claims.toml");
    std::fs::write(&path, toml_text).unwrap();
    load(&path).unwrap().remove(0)
}

const DIFF: &str = r#"
[[claim]]
id = "C1"
source = "Table 1"
claim = "int8 loses at most 2 points"
statistic = "difference"
side = "<="
threshold = 2.0
per = ["model"]
where = { metric = "top1" }
a = { method = "float" }
b = { method = "int8" }
"#;

fn verdicts(c: &Claim, rows: &[ResultRow]) -> Vec<(String, ClaimVerdict)> {
    evaluate(c, rows, &[])
        .into_iter()
        .map(|r| (r.instance, r.verdict))
        .collect()
}

#[test]
fn paired_seeds_support_contradict_or_straddle() {
    let c = claim(DIFF);
    // Differences 1.0, 1.1, 0.9: interval well under 2.
    let supported = [
        row("float", "N", 0, 91.0),
        row("float", "N", 1, 91.1),
        row("float", "N", 2, 90.9),
        row("int8", "N", 0, 90.0),
        row("int8", "N", 1, 90.0),
        row("int8", "N", 2, 90.0),
    ];
    assert_eq!(
        verdicts(&c, &supported),
        [("model=N".to_string(), ClaimVerdict::Supported)]
    );
    // Differences 5.0, 5.2, 4.8: interval above 2.
    let contradicted: Vec<_> = supported
        .iter()
        .map(|r| ResultRow {
            value: if r.method == "int8" {
                r.value - 4.0
            } else {
                r.value
            },
            ..r.clone()
        })
        .collect();
    assert_eq!(verdicts(&c, &contradicted)[0].1, ClaimVerdict::Contradicted);
    // Differences 0, 4, 2: mean 2, interval straddles.
    let straddles = [
        row("float", "N", 0, 90.0),
        row("float", "N", 1, 94.0),
        row("float", "N", 2, 92.0),
        row("int8", "N", 0, 90.0),
        row("int8", "N", 1, 90.0),
        row("int8", "N", 2, 90.0),
    ];
    let r = evaluate(&c, &straddles, &[]);
    assert_eq!(r[0].verdict, ClaimVerdict::Inconclusive);
    assert!(r[0].ci_low.unwrap() < 2.0 && r[0].ci_high.unwrap() > 2.0);
}

#[test]
fn fewer_than_three_seeds_is_inconclusive_and_says_so() {
    let c = claim(DIFF);
    let rows = [
        row("float", "N", 0, 91.0),
        row("float", "N", 1, 91.0),
        row("int8", "N", 0, 90.0),
        row("int8", "N", 1, 90.0),
    ];
    let r = evaluate(&c, &rows, &[]);
    assert_eq!(r[0].verdict, ClaimVerdict::Inconclusive);
    assert_eq!(r[0].seeds, 2);
    assert!(
        r[0].reason.contains("2 seed(s); needs 3"),
        "{}",
        r[0].reason
    );
    assert_eq!(r[0].estimate, Some(1.0));
}

#[test]
fn missing_side_is_untested_and_each_model_is_its_own_instance() {
    let c = claim(DIFF);
    let rows = [
        row("float", "A", 0, 91.0),
        row("float", "B", 0, 91.0),
        row("int8", "B", 0, 90.0),
    ];
    let v = verdicts(&c, &rows);
    assert_eq!(v[0], ("model=A".into(), ClaimVerdict::Untested));
    assert_eq!(v[1].0, "model=B");
    assert_eq!(v[1].1, ClaimVerdict::Inconclusive);
    assert_eq!(verdicts(&c, &[])[0].1, ClaimVerdict::Untested);
}

#[test]
fn rows_of_another_training_length_are_not_averaged_in() {
    let c = claim(DIFF);
    let mut rows: Vec<_> = (0..3)
        .flat_map(|s| {
            [
                row("float", "N", s, 91.0),
                row("int8", "N", s, 90.0 + s as f64 * 0.1),
            ]
        })
        .collect();
    assert_eq!(verdicts(&c, &rows)[0].1, ClaimVerdict::Supported);
    rows.push(ResultRow {
        epochs: 0,
        value: 60.0,
        ..row("float", "N", 5, 0.0)
    });
    let r = evaluate(&c, &rows, &[]);
    assert_eq!(r[0].verdict, ClaimVerdict::Inconclusive);
    assert!(r[0].reason.contains("settings"), "{}", r[0].reason);
}

#[test]
fn unpaired_seeds_use_welch() {
    let c = claim(DIFF);
    let rows = [
        row("float", "N", 0, 91.0),
        row("float", "N", 1, 91.2),
        row("float", "N", 2, 90.8),
        row("int8", "N", 10, 90.0),
        row("int8", "N", 11, 90.2),
        row("int8", "N", 12, 89.8),
    ];
    let r = evaluate(&c, &rows, &[]);
    assert_eq!(r[0].verdict, ClaimVerdict::Supported);
    let w = crate::stats::welch(&[91.0, 91.2, 90.8], &[90.0, 90.2, 89.8]).unwrap();
    assert!((r[0].ci_high.unwrap() - w.high).abs() < 1e-12);
}

#[test]
fn list_fields_split_into_one_instance_per_rival_and_ratio_is_geometric() {
    let c = claim(
        r#"
[[claim]]
id = "R"
source = "Table 2"
claim = "ours is faster than each rival"
statistic = "ratio"
side = ">"
threshold = 1.0
where = { metric = "top1" }
a = { method = ["slow", "fast"] }
b = { method = "ours" }
"#,
    );
    let rows: Vec<_> = (0..3)
        .flat_map(|s| {
            [
                row("slow", "N", s, 4.0),
                row("fast", "N", s, 0.5),
                row("ours", "N", s, 1.0 + s as f64 * 0.01),
            ]
        })
        .collect();
    let r = evaluate(&c, &rows, &[]);
    assert_eq!(r.len(), 2);
    assert_eq!(r[0].instance, "method[a]=slow");
    assert_eq!(r[0].verdict, ClaimVerdict::Supported);
    assert_eq!(r[1].verdict, ClaimVerdict::Contradicted);
    let geo = (4.0f64.ln() * 3.0 - (1.0f64.ln() + 1.01f64.ln() + 1.02f64.ln())) / 3.0;
    assert!((r[0].estimate.unwrap() - geo.exp()).abs() < 1e-12);
}

#[test]
fn exact_basis_needs_every_row_on_the_side() {
    let c = claim(
        r#"
[[claim]]
id = "E"
source = "Fig. 1"
claim = "no INT32 multiplies"
statistic = "value"
basis = "exact"
side = "="
threshold = 0.0
a = { method = "ours", metric = "top1" }
"#,
    );
    let zero = [row("ours", "N", 0, 0.0), row("ours", "N", 1, 0.0)];
    assert_eq!(verdicts(&c, &zero)[0].1, ClaimVerdict::Supported);
    let one = [row("ours", "N", 0, 0.0), row("ours", "N", 1, 3.0)];
    assert_eq!(verdicts(&c, &one)[0].1, ClaimVerdict::Contradicted);
}

#[test]
fn published_side_is_a_constant_and_never_the_same_row() {
    let c = claim(
        r#"
[[claim]]
id = "P"
source = "Abstract"
claim = "reaches the published accuracy"
statistic = "difference"
side = "within"
threshold = 0.5
per = ["model"]
where = { method = "ours", metric = "top1" }
a = {}
b = { from = "published" }
"#,
    );
    let published = PublishedRow {
        paper: "P".into(),
        source: "T1".into(),
        dataset: "MNIST".into(),
        model: "N".into(),
        method: "ours".into(),
        w_bits: "8".into(),
        a_bits: "8".into(),
        metric: "top1".into(),
        value: 97.0,
        notes: String::new(),
    };
    let rows = [
        row("ours", "N", 0, 96.9),
        row("ours", "N", 1, 97.0),
        row("ours", "N", 2, 96.95),
    ];
    let r = evaluate(&c, &rows, std::slice::from_ref(&published));
    assert_eq!(r[0].verdict, ClaimVerdict::Supported, "{r:?}");
    let far: Vec<_> = rows
        .iter()
        .map(|r| ResultRow {
            value: r.value - 3.0,
            ..r.clone()
        })
        .collect();
    assert_eq!(
        evaluate(&c, &far, std::slice::from_ref(&published))[0].verdict,
        ClaimVerdict::Contradicted
    );
}

#[test]
fn sides_at_the_threshold() {
    assert_eq!(side_of(Side::Above, 0.0, 0.0, 1.0), None);
    assert_eq!(side_of(Side::AtLeast, 0.0, 0.0, 1.0), Some(true));
    assert_eq!(side_of(Side::Above, 0.0, -1.0, 0.0), Some(false));
    assert_eq!(side_of(Side::AtLeast, 0.0, -1.0, -0.1), Some(false));
    assert_eq!(side_of(Side::Below, 0.0, -1.0, -0.1), Some(true));
    assert_eq!(side_of(Side::AtMost, 2.0, 2.1, 3.0), Some(false));
    assert_eq!(side_of(Side::Within, 0.5, -0.4, 0.5), Some(true));
    assert_eq!(side_of(Side::Within, 0.5, 0.6, 0.9), Some(false));
    assert_eq!(side_of(Side::Within, 0.5, 0.4, 0.9), None);
}

#[test]
fn bad_claims_files_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("claims.toml");
    for (text, want) in [
        (
            DIFF.replace("\"model\"]", "\"modle\"]"),
            "unknown field \"modle\"",
        ),
        (DIFF.replace("side = \"<=\"", "side = \"=\""), "needs basis"),
        (DIFF.replace("b = { method = \"int8\" }", ""), "needs a `b`"),
        (format!("{DIFF}{DIFF}"), "duplicate id"),
        ("[[claim]]\nid = 3".to_string(), "claims.toml"),
    ] {
        std::fs::write(&path, text).unwrap();
        let e = load(&path).unwrap_err().to_string();
        assert!(e.contains(want), "{e}");
        assert_eq!(e.lines().count(), 1, "{e}");
    }
}
