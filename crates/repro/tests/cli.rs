//! End-to-end checks of the `repro` binary and the data script on small fixtures.

use std::path::Path;
use std::process::Command;

const HEADER: &str = "paper,source,dataset,model,method,w_bits,a_bits,metric";

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
        "source,metric_prefix,tolerance,baseline_method\n*,*,0.5,float\n",
    )
    .unwrap();
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

#[test]
fn summary_counts_missing_then_direction_for_proxy_rows() {
    let root = fixture_root();
    let (ok, stdout, _) = compare(root.path(), &["--summary"]);
    assert!(ok);
    assert_eq!(
        stdout.trim(),
        "toy: match=0 direction=0 deviates=0 missing=2"
    );

    let results = root.path().join("results/toy");
    std::fs::create_dir_all(&results).unwrap();
    std::fs::write(
        results.join("main.csv"),
        format!(
            "{HEADER},value,proxy,profile,seed,epochs,run_id\n\
             Toy,T1,Fashion-MNIST,Net,float,32,32,top1,91.0,small net,full,0,2,r\n\
             Toy,T1,Fashion-MNIST,Net,int8,8,8,top1,90.5,small net,full,0,2,r\n"
        ),
    )
    .unwrap();
    std::fs::write(
        results.join("epochs.csv"),
        "dataset,epoch,loss\nmnist,1,3\n",
    )
    .unwrap();
    let (ok, stdout, _) = compare(root.path(), &["--summary"]);
    assert!(ok);
    assert_eq!(
        stdout.trim(),
        "toy: match=0 direction=2 deviates=0 missing=0"
    );
    let comparison = std::fs::read_to_string(results.join("comparison.csv")).unwrap();
    assert!(comparison.contains("direction"), "{comparison}");
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
