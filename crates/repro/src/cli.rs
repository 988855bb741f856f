//! The arguments every experiment binary takes, spelled, documented and defaulted once.
//!
//! Each paper binary flattens [`RunArgs`] into its command line, so `--profile`, `--dataset`,
//! `--data`, `--seed`, `--seeds`, `--epochs`, `--threads`, `--backend`, `--devices` and `--out` mean the same
//! thing in all of them. A flag that has no paper-independent default (the data set, the seeds,
//! the epochs) is optional here and the experiment states its own default in its help and README;
//! the profile defaults to `full` everywhere, because running a binary means reproducing its
//! paper, and tests and CI ask for `smoke` by name.

use std::path::{Path, PathBuf};

use crate::Profile;
use crate::datasets::{DataRoot, Dataset, DatasetName, load_checked};
use crate::manifest::Run;

/// Where, on what and how much to run.
#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// smoke (seconds on a slice of the data, what tests and CI run), full (the committed
    /// reproduction) or paper (the paper's own models and data at full scale: see each README).
    #[arg(long, value_enum, default_value_t = Profile::Full, global = true)]
    pub profile: Profile,
    /// Data set (default: the experiment's, named in its help).
    #[arg(long, value_enum, global = true)]
    pub dataset: Option<DatasetName>,
    /// Data root holding mnist/ and fashion-mnist/, or the unpacked CIFAR binary archives
    /// (cifar-10-batches-bin/, cifar-100-binary/) (default: $QUANT_DATA_ROOT, else <workspace>/data).
    #[arg(long, global = true)]
    pub data: Option<PathBuf>,
    /// First seed (default: the experiment's).
    #[arg(long, global = true)]
    pub seed: Option<u64>,
    /// Seeds to run, from --seed on (default: the profile's).
    #[arg(long, global = true)]
    pub seeds: Option<u64>,
    /// Float training epochs (default: the profile's, per model).
    #[arg(long, global = true)]
    pub epochs: Option<u32>,
    /// Worker threads (default: every core). Results do not depend on it.
    #[arg(long, global = true)]
    pub threads: Option<usize>,
    /// Burn backend that trains: flex (default, the CPU), or ndarray, wgpu, vulkan, cuda where the
    /// binary was built with the cargo feature of that name. Integer kernels and engines do not use
    /// Burn.
    #[arg(long, default_value = "flex", global = true)]
    pub backend: String,
    /// Hardware index of the GPU that trains, for a GPU backend (default: the backend's own choice).
    #[arg(long, value_delimiter = ',', global = true)]
    pub devices: Vec<usize>,
    /// A published checkpoint (.safetensors, .pth) the paper profile starts from, where the
    /// paper's rows start from a pretrained network.
    #[arg(long, global = true)]
    pub pretrained: Option<PathBuf>,
    /// Results root (tables go to <out>/<paper>/; default: results/ for --profile full,
    /// target/results-<profile>/ otherwise).
    #[arg(long, global = true)]
    pub out: Option<PathBuf>,
    /// Checkpoint folder of the trainings: a rerun of the same training (same recipe, data and
    /// starting model) resumes from it (default: the binary's folder under <workspace>/target/ for
    /// --profile full; the smoke profile keeps none unless this is given).
    #[arg(long, global = true)]
    pub checkpoints: Option<PathBuf>,
}

impl RunArgs {
    /// Errors on counts of zero, which would train nothing (epochs, seeds) or fall back silently
    /// to every core (rayon's `0`).
    pub fn validate(&self) -> Result<(), String> {
        for (flag, value) in [
            ("--epochs", self.epochs.map(u64::from)),
            ("--seeds", self.seeds),
            ("--threads", self.threads.map(|t| t as u64)),
        ] {
            if value == Some(0) {
                return Err(format!("{flag} 0: use 1 or more"));
            }
        }
        Ok(())
    }

    /// Errors when any of `flags` (spelled as on the command line) was given: for a command whose
    /// experiment fixes that setting, `why` says how (and so what to drop).
    pub fn refuse(&self, flags: &[&str], why: &str) -> Result<(), String> {
        let given = |flag: &str| match flag {
            "--dataset" => self.dataset.is_some(),
            "--seed" => self.seed.is_some(),
            "--seeds" => self.seeds.is_some(),
            "--epochs" => self.epochs.is_some(),
            "--backend" => self.backend != "flex",
            "--devices" => !self.devices.is_empty(),
            "--checkpoints" => self.checkpoints.is_some(),
            _ => false,
        };
        match flags.iter().find(|f| given(f)) {
            Some(flag) => Err(format!("{flag}: {why}; drop {flag}")),
            None => Ok(()),
        }
    }

    /// Where the trainings keep their checkpoints: `--checkpoints`, else `<workspace>/target/<folder>`
    /// in the full profile and none in the smoke profile (whose runs take seconds).
    pub fn checkpoint_dir(&self, folder: &str) -> Option<PathBuf> {
        match (&self.checkpoints, self.profile) {
            (Some(dir), _) => Some(dir.clone()),
            (None, Profile::Smoke) => None,
            (None, _) => Some(crate::workspace_root().join("target").join(folder)),
        }
    }

    /// The worker threads: `--threads`, else every core.
    pub fn threads(&self) -> usize {
        self.threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    /// The data set: `--dataset`, else the experiment's `default`.
    pub fn dataset_or(&self, default: DatasetName) -> DatasetName {
        self.dataset.unwrap_or(default)
    }

    /// [`Self::dataset_or`] for `binary`, whose proxies take only grey 28x28 images: a colour data
    /// set is refused before anything loads ([`DatasetName::require_grey`]).
    pub fn grey_dataset_or(
        &self,
        default: DatasetName,
        binary: &str,
    ) -> Result<DatasetName, String> {
        let name = self.dataset_or(default);
        name.require_grey(binary)?;
        Ok(name)
    }

    /// `--seeds` seeds from `--seed` on, with the experiment's first seed and the profile's count
    /// where the flags are absent.
    pub fn seed_list(&self, first: u64, count: u64) -> Vec<u64> {
        let first = self.seed.unwrap_or(first);
        (0..self.seeds.unwrap_or(count))
            .map(|i| first.wrapping_add(i))
            .collect()
    }

    /// Loads and checks `name` under the data root (flag, environment or workspace; see
    /// [`load_checked`]).
    pub fn load(&self, name: DatasetName) -> Result<Dataset, String> {
        let root = DataRoot::resolve(self.data.as_deref());
        load_checked(&root, name, self.profile.name())
    }

    /// The results root (see [`crate::out_dir::results_root`]). A run on a CIFAR set without `--out`
    /// writes under `target/results-<profile>-<set>/`: `results/` holds the rows of record, which are
    /// on the grey data sets, and a paper's claims judge every row of its tables together.
    pub fn out_root(&self) -> PathBuf {
        match (&self.out, self.dataset.filter(|d| d.cifar().is_some())) {
            (None, Some(colour)) => crate::workspace_root().join("target").join(format!(
                "results-{}-{}",
                self.profile.name(),
                colour.cli_name()
            )),
            _ => crate::out_dir::results_root(self.out.as_deref(), self.profile.name()),
        }
    }

    /// Validates the arguments, sizes the process's rayon pool and starts the run's manifest
    /// record: what every binary does before its first experiment. `--profile paper` is an error
    /// here: a command with a paper-scale run starts through [`Self::start_paper_scale`].
    pub fn start(&self) -> Result<RunContext, String> {
        if self.profile == Profile::Paper {
            return Err(
                "--profile paper: this command has no paper-scale run yet (adaptivfloat accuracy, \
                 integer-qat depth and f8net --model have; see the paper's \
                 README): use --profile full for the proxies"
                    .into(),
            );
        }
        if self.pretrained.is_some() {
            return Err(
                "--pretrained: only the paper profile starts from a published checkpoint; drop \
                 --pretrained or add --profile paper"
                    .into(),
            );
        }
        self.start_paper_scale()
    }

    /// [`Self::start`] for a command that runs every profile, `paper` included.
    pub fn start_paper_scale(&self) -> Result<RunContext, String> {
        self.validate()?;
        let threads = self.threads();
        // A second call in one process (tests) keeps the first pool, which is fine: results do
        // not depend on the thread count.
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global();
        Ok(RunContext {
            run: Run::start(self.profile.name(), threads),
            out: self.out_root(),
            threads,
        })
    }
}

/// A started run: its manifest record, results root and thread count.
#[derive(Debug, Clone)]
pub struct RunContext {
    /// The manifest entry every table this run writes records.
    pub run: Run,
    /// Results root.
    pub out: PathBuf,
    /// Worker threads of the process's pool.
    pub threads: usize,
}

impl RunContext {
    /// `<out>/<paper>/<table>.csv`.
    pub fn table(&self, paper: &str, table: &str) -> PathBuf {
        crate::results::table_path(&self.out, paper, table)
    }

    /// The results root.
    pub fn out(&self) -> &Path {
        &self.out
    }

    /// Records each `(table, rows)` in `<out>/<paper>/` with the inputs' `checksums`, saying on
    /// stderr where the rows went.
    pub fn record_tables(
        &self,
        paper: &str,
        tables: Vec<(&str, Vec<crate::results::ResultRow>)>,
        checksums: &[(String, String)],
    ) -> Result<(), String> {
        for (table, rows) in tables {
            let path = self.table(paper, table);
            self.run
                .record(&path, &rows, checksums)
                .map_err(|e| e.to_string())?;
            eprintln!("wrote {} rows to {}", rows.len(), path.display());
        }
        Ok(())
    }
}

/// The progress bar every binary shows on stderr: `label`, elapsed and remaining time, `len` steps,
/// and a message the caller updates (loss and accuracy, say). An empty label hides it.
pub fn progress_bar(len: u64, label: &str) -> indicatif::ProgressBar {
    use indicatif::{ProgressBar, ProgressStyle};
    if label.is_empty() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix} [{elapsed_precise}<{eta_precise}] {bar:30} {pos}/{len} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_prefix(label.to_string());
    bar
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }

    fn parse(args: &[&str]) -> RunArgs {
        Cli::try_parse_from(std::iter::once("bin").chain(args.iter().copied()))
            .unwrap()
            .run
    }

    #[test]
    fn colour_runs_stay_out_of_the_results_of_record() {
        let root = crate::workspace_root();
        assert_eq!(
            parse(&["--dataset", "cifar100"]).out_root(),
            root.join("target/results-full-cifar100")
        );
        assert_eq!(
            parse(&["--dataset", "mnist"]).out_root(),
            root.join("results")
        );
        assert_eq!(
            parse(&["--dataset", "cifar10", "--out", "/tmp/x"]).out_root(),
            Path::new("/tmp/x")
        );
    }

    #[test]
    fn defaults_are_full_flex_and_the_experiments_own() {
        let a = parse(&[]);
        assert_eq!(a.profile, Profile::Full);
        assert_eq!(a.backend, "flex");
        assert_eq!(a.dataset_or(DatasetName::Mnist), DatasetName::Mnist);
        assert_eq!(a.seed_list(7, 3), vec![7, 8, 9]);
        assert!(a.threads() >= 1);
    }

    #[test]
    fn flags_override_the_experiments_defaults() {
        let a = parse(&[
            "--profile",
            "smoke",
            "--dataset",
            "fashion-mnist",
            "--seed",
            "4",
            "--seeds",
            "2",
            "--threads",
            "3",
        ]);
        assert_eq!(a.profile, Profile::Smoke);
        assert_eq!(a.dataset_or(DatasetName::Mnist), DatasetName::FashionMnist);
        assert_eq!(a.seed_list(0, 3), vec![4, 5]);
        assert_eq!(a.threads(), 3);
    }

    /// Checkpoints: the flag wins; otherwise the binary's folder under target/ for the full profile
    /// and none for the smoke profile.
    #[test]
    fn checkpoint_folder_is_the_flag_or_the_profiles_default() {
        let full = parse(&[]).checkpoint_dir("x-checkpoints").unwrap();
        assert!(full.ends_with("target/x-checkpoints"), "{}", full.display());
        assert_eq!(parse(&["--profile", "smoke"]).checkpoint_dir("x"), None);
        assert_eq!(
            parse(&["--profile", "smoke", "--checkpoints", "/tmp/c"]).checkpoint_dir("x"),
            Some(PathBuf::from("/tmp/c"))
        );
    }

    #[test]
    fn fixed_settings_refuse_their_flags_and_only_those() {
        let why = "the experiment fixes it";
        assert_eq!(
            parse(&["--seed", "3"]).refuse(&["--seed", "--epochs"], why),
            Err("--seed: the experiment fixes it; drop --seed".to_string())
        );
        assert!(
            parse(&["--seed", "3"])
                .refuse(&["--epochs", "--dataset"], why)
                .is_ok()
        );
        assert!(
            parse(&["--backend", "ndarray"])
                .refuse(&["--backend"], why)
                .is_err()
        );
        assert!(parse(&[]).refuse(&["--backend", "--seeds"], why).is_ok());
    }

    #[test]
    fn zero_counts_are_refused_with_the_flag_named() {
        for flag in ["--epochs", "--seeds", "--threads"] {
            let err = parse(&[flag, "0"]).validate().unwrap_err();
            assert_eq!(err, format!("{flag} 0: use 1 or more"));
        }
    }
}
