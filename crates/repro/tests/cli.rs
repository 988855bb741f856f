//! End-to-end checks of the `repro` binary and the data script on small fixtures.

use std::path::Path;
use std::process::Command;

const HEADER: &str = "paper,source,dataset,model,method,w_bits,a_bits,metric";

const CLAIMS: &str = r#"
[[claim]]
id = "C1"
source = "Table 1"
claim = "int8 costs at most 2 points"
statistic = "difference"
side = "<="
threshold = 2.0
per = ["model"]
where = { metric = "top1" }
a = { method = "float" }
b = { method = "int8" }
"#;

fn fixture_root() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let exp = root.path().join("experiments/toy");
    std::fs::create_dir_all(&exp).unwrap();
    std::fs::write(
        exp.join("published.csv"),
        format!("{HEADER},value,notes\nToy,T1,ImageNet,Net,float,32,32,top1,76.0,\nToy,T1,ImageNet,Net,int8,8,8,top1,75.0,\n"),
    )
    .unwrap();
    std::fs::write(
        exp.join("compare.csv"),
        "source,metric_prefix,tolerance\n*,*,0.5\n",
    )
    .unwrap();
    std::fs::write(exp.join("claims.toml"), CLAIMS).unwrap();
    root
}

fn compare(root: &Path, extra: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_repro"))
        .args(["compare", "--root"])
        .arg(root)
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// Three seeds of a proxy run: float 91.0/91.2/90.8, int8 one point lower each.
fn proxy_rows() -> String {
    let mut text = format!("{HEADER},value,proxy,profile,seed,epochs,run_id\n");
    for (seed, v) in [(0, 91.0), (1, 91.2), (2, 90.8)] {
        text +=
            &format!("Toy,T1,Fashion-MNIST,Net,float,32,32,top1,{v},small net,full,{seed},2,r\n");
        text += &format!(
            "Toy,T1,Fashion-MNIST,Net,int8,8,8,top1,{},small net,full,{seed},2,r\n",
            v - 1.0
        );
    }
    text
}

#[test]
fn summary_counts_cells_and_claims_and_generated_files_cannot_go_stale() {
    let root = fixture_root();
    let (ok, stdout, stderr) = compare(root.path(), &["--summary"]);
    assert!(ok, "{stderr}");
    assert_eq!(
        stdout.trim(),
        "toy: exact match=0 deviates=0; proxy cells=0; missing=2; claims supported=0 contradicted=0 inconclusive=0 untested=1"
    );

    let results = root.path().join("results/toy");
    std::fs::create_dir_all(&results).unwrap();
    std::fs::write(results.join("main.csv"), proxy_rows()).unwrap();
    std::fs::write(
        results.join("epochs.csv"),
        "dataset,epoch,loss\nmnist,1,3\n",
    )
    .unwrap();
    let (ok, _, stderr) = compare(root.path(), &["--summary", "--check"]);
    assert!(!ok, "stale claims must fail the check");
    assert!(stderr.contains("is stale: run `make compare`"), "{stderr}");
    let (ok, stdout, _) = compare(root.path(), &["--summary"]);
    assert!(ok);
    assert_eq!(
        stdout.trim(),
        "toy: exact match=0 deviates=0; proxy cells=2; missing=0; claims supported=1 contradicted=0 inconclusive=0 untested=0"
    );
    let claims = std::fs::read_to_string(results.join("claims.md")).unwrap();
    assert!(
        claims.contains("| C1 |") && claims.contains("**supported**"),
        "{claims}"
    );
    let (ok, _, stderr) = compare(root.path(), &["--summary", "--check"]);
    assert!(ok, "{stderr}");
    // The derived tables' manifests name their inputs: a changed input makes them stale even when
    // the judged rows are the same (a smoke row is not judged under the full profile).
    let manifest = std::fs::read_to_string(results.join("claims.manifest.json")).unwrap();
    assert!(
        manifest.contains("results/toy/main.csv")
            && manifest.contains("experiments/toy/claims.toml")
    );
    assert_eq!(
        manifest,
        std::fs::read_to_string(results.join("comparison.manifest.json")).unwrap()
    );
    let smoke = "Toy,T1,Fashion-MNIST,Net,float,32,32,top1,50.0,small net,smoke,0,2,s\n";
    std::fs::write(results.join("main.csv"), proxy_rows() + smoke).unwrap();
    let (ok, _, stderr) = compare(root.path(), &["--summary", "--check"]);
    assert!(
        !ok && stderr.contains("comparison.manifest.json is stale"),
        "{stderr}"
    );
}

#[test]
fn a_run_with_other_settings_is_not_averaged_in() {
    let root = fixture_root();
    let results = root.path().join("results/toy");
    std::fs::create_dir_all(&results).unwrap();
    let stray = "Toy,T1,Fashion-MNIST,Net,float,32,32,top1,64.8,small net,full,3,0,s\n";
    std::fs::write(results.join("main.csv"), proxy_rows() + stray).unwrap();
    let (ok, stdout, _) = compare(root.path(), &["--summary"]);
    assert!(ok);
    assert!(stdout.contains("proxy cells=3"), "{stdout}");
    assert!(stdout.contains("inconclusive=1"), "{stdout}");
    let comparison = std::fs::read_to_string(results.join("comparison.csv")).unwrap();
    assert!(
        comparison.contains(",91.0,"),
        "seeds of the 2-epoch run keep their mean: {comparison}"
    );
}

#[test]
fn bad_tables_and_arguments_are_one_line_errors_naming_the_file() {
    let good = proxy_rows();
    let header = good.lines().next().unwrap().to_string();
    let cases: Vec<(&str, String, &str)> = vec![
        ("empty", String::new(), "empty file"),
        ("header only", format!("{header}\n"), "no rows"),
        (
            "missing column",
            good.replace(",proxy", ",proxi"),
            "main.csv",
        ),
        (
            "torn row",
            good.clone() + "Toy,T1,Fashion-MNIST\n",
            "main.csv",
        ),
        ("NaN", good.replace("90.8,", "NaN,"), "has value NaN"),
        ("infinite", good.replace("90.8,", "inf,"), "has value inf"),
    ];
    for (case, table, want) in cases {
        let root = fixture_root();
        let results = root.path().join("results/toy");
        std::fs::create_dir_all(&results).unwrap();
        std::fs::write(results.join("main.csv"), &table).unwrap();
        let (ok, _, stderr) = compare(root.path(), &["--summary"]);
        assert!(!ok, "{case}");
        assert_eq!(stderr.lines().count(), 1, "{case}: {stderr}");
        assert!(stderr.contains(want), "{case}: {stderr}");
        assert!(!results.join("claims.csv").exists(), "{case}: wrote output");
    }
    let root = fixture_root();
    let (ok, _, stderr) = compare(root.path(), &["--profile", "fulll"]);
    assert!(!ok);
    assert!(stderr.contains("fulll"), "{stderr}");
    std::fs::remove_file(root.path().join("experiments/toy/published.csv")).unwrap();
    let (ok, _, stderr) = compare(root.path(), &["--summary"]);
    assert!(!ok);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("published.csv missing"), "{stderr}");
}

#[test]
fn unknown_paper_is_a_one_line_error() {
    let root = fixture_root();
    let (ok, _, stderr) = compare(root.path(), &["--paper", "nope"]);
    assert!(!ok);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("choose one of toy"), "{stderr}");
}

fn fetch_data(dest: &Path, source: &Path) -> std::process::Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/fetch_data.sh");
    Command::new("bash")
        .arg(script)
        .env("QUANT_DATA_DEST", dest)
        .env("QUANT_DATA_DIR", source)
        .env("QUANT_SHARED_DATA", source.join("no-shared-data"))
        .env("QUANT_NO_DOWNLOAD", "1")
        .output()
        .unwrap()
}

#[test]
fn data_script_fails_clearly_without_a_source() {
    let (dest, empty) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let out = fetch_data(dest.path(), empty.path());
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no valid source for mnist/train-images-idx3-ubyte"),
        "{stderr}"
    );
    assert!(stderr.contains("set QUANT_DATA_DIR"), "{stderr}");
}

#[test]
fn data_script_refuses_a_file_whose_checksum_differs() {
    let (dest, source) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    std::fs::create_dir_all(source.path().join("mnist")).unwrap();
    std::fs::write(
        source.path().join("mnist/train-images-idx3-ubyte"),
        b"not mnist",
    )
    .unwrap();
    let out = fetch_data(dest.path(), source.path());
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("refusing") && stderr.contains("expected"),
        "{stderr}"
    );
    assert!(
        !dest
            .path()
            .join("mnist/train-images-idx3-ubyte.gz")
            .exists()
    );
}

#[test]
fn provenance_fails_on_a_dirty_or_foreign_run_and_counts_legacy_ones() {
    let root = fixture_root();
    let results = root.path().join("results/toy");
    std::fs::create_dir_all(&results).unwrap();
    let record = |id: &str, extra: &str| {
        format!(
            r#"{{"run_id":"{id}","command_line":"x","git_commit":"abc","start_time":"t","end_time":"t","host_cpu":"c","threads":1,"profile":"full","data_checksums":[]{extra}}}"#
        )
    };
    let write = |runs: &[String]| {
        std::fs::write(
            results.join("main.manifest.json"),
            format!(r#"{{"runs":[{}]}}"#, runs.join(",")),
        )
        .unwrap()
    };
    let provenance = || {
        Command::new(env!("CARGO_BIN_EXE_repro"))
            .args(["provenance", "--root"])
            .arg(root.path())
            .output()
            .unwrap()
    };
    write(&[record("old", "")]);
    let out = provenance();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 legacy runs"));

    write(&[record(
        "dirty",
        r#","git_dirty":true,"git_diff_sha256":"ff","executable":"/tmp/elsewhere""#,
    )]);
    let out = provenance();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("run dirty: source differed"), "{stderr}");
    assert!(
        stderr.contains("not one built in this workspace"),
        "{stderr}"
    );
}
