//! One reproduction's outcome (cells and claims) and `results/REPORT.md`, the page that shows every
//! paper's outcome at once: claims with verdicts, the proxy mapping, the measured cells, the figures and
//! the time the recorded runs took. Both are generated from the committed results, never edited.

use crate::Profile;
use crate::claims::{self, ClaimResult, cell, number};
use crate::compare::{self, ComparisonRow, Verdict};
use crate::manifest::{Manifest, parse_iso_utc};
use crate::published::{PaperExperiments, paper_dirs};
use crate::results::{TableError, read_result_tables};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// What `compare` finds for one paper.
pub struct PaperOutcome {
    /// Folder name under `experiments/` and `results/`.
    pub dir: String,
    pub cells: Vec<ComparisonRow>,
    pub claims: Vec<ClaimResult>,
    /// Every file the cells and claims were computed from: the paper's experiment files and its
    /// result tables.
    pub inputs: Vec<PathBuf>,
}

impl PaperOutcome {
    /// Judges one paper's committed rows of `profile` against its published numbers and claims.
    pub fn evaluate(root: &Path, dir: &str, profile: Profile) -> Result<Self, TableError> {
        let experiments = PaperExperiments::load(&root.join("experiments"), dir)?;
        let tables = read_result_tables(&root.join("results").join(dir))?;
        let results: Vec<_> = tables
            .rows
            .into_iter()
            .filter(|r| r.profile == profile.name())
            .collect();
        let inputs = PaperExperiments::FILES
            .iter()
            .map(|f| root.join("experiments").join(dir).join(f))
            .chain(tables.files)
            .collect();
        let cells = compare::compare(&experiments, &results, profile.name())?;
        let claims = experiments
            .claims
            .iter()
            .flat_map(|c| claims::evaluate(c, &results, &experiments.published))
            .collect();
        Ok(PaperOutcome {
            dir: dir.to_string(),
            cells,
            claims,
            inputs,
        })
    }

    /// `<paper>: exact match=N deviates=N; proxy cells=N; missing=N; claims supported=N ...`.
    pub fn summary_line(&self) -> String {
        let [m, d, p, x] = compare::counts(&self.cells);
        let [s, c, i, u] = claims::counts(&self.claims);
        format!(
            "{}: exact match={m} deviates={d}; proxy cells={p}; missing={x}; claims supported={s} contradicted={c} inconclusive={i} untested={u}",
            self.dir
        )
    }
}

/// The runs recorded in a paper's manifests, each counted once.
#[derive(Default)]
struct RecordedRuns {
    runs: usize,
    /// Wall time, summed over the runs.
    seconds: u64,
    /// Wall time times the run's threads, summed: the core time the runs held.
    core_seconds: u64,
    threads: BTreeSet<usize>,
}

fn recorded_runs(results_dir: &Path) -> Result<RecordedRuns, TableError> {
    let mut runs = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(results_dir) else {
        return Ok(RecordedRuns::default());
    };
    let mut paths: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".manifest.json"))
        .collect();
    paths.sort();
    for path in paths {
        for run in Manifest::read(&path)?.runs {
            runs.insert(run.run_id.clone(), run);
        }
    }
    let wall: Vec<(u64, usize)> = runs
        .values()
        .filter_map(|r| {
            let s = parse_iso_utc(&r.end_time)?.saturating_sub(parse_iso_utc(&r.start_time)?);
            Some((s, r.threads))
        })
        .collect();
    Ok(RecordedRuns {
        runs: runs.len(),
        seconds: wall.iter().map(|&(s, _)| s).sum(),
        core_seconds: wall.iter().map(|&(s, t)| s * t as u64).sum(),
        threads: runs.values().map(|r| r.threads).collect(),
    })
}

/// The section of one paper.
fn paper_section(root: &Path, outcome: &PaperOutcome) -> Result<String, TableError> {
    let dir = &outcome.dir;
    let mut md = String::new();
    let _ = writeln!(md, "## {dir}\n");
    let _ = writeln!(
        md,
        "What runs, on which data and model, and why: [`experiments/{dir}/README.md`](../experiments/{dir}/README.md).\n"
    );
    let _ = writeln!(md, "`{}`\n", outcome.summary_line());
    let recorded = recorded_runs(&root.join("results").join(dir))?;
    let threads: Vec<String> = recorded.threads.iter().map(usize::to_string).collect();
    let _ = writeln!(
        md,
        "Recorded full-profile runs: {}, {:.1} h wall time and {:.1} core-hours (wall time x threads) in all, {} threads each. These are the runs of record only: one that resumed its trainings from checkpoints records its own part, and runs that shared the machine ran slower than alone; the paper's README gives the cost of its full profile, and the `*.manifest.json` files the commands and machines.\n",
        recorded.runs,
        recorded.seconds as f64 / 3600.0,
        recorded.core_seconds as f64 / 3600.0,
        threads.join(" or ")
    );
    let _ = writeln!(md, "### Claims\n");
    md.push_str(&claims::markdown(&outcome.claims));
    md.push('\n');

    let proxies: BTreeSet<(&str, &str)> = outcome
        .cells
        .iter()
        .filter(|c| c.verdict == Verdict::Proxy)
        .map(|c| (c.model.as_str(), c.proxy.as_str()))
        .collect();
    if !proxies.is_empty() {
        let _ = writeln!(
            md,
            "### Proxies\n\n| the paper's model | stand-in that ran here |\n|---|---|"
        );
        for (model, proxy) in proxies {
            let _ = writeln!(md, "| {} | {} |", cell(model), cell(proxy));
        }
        md.push('\n');
    }

    let measured: Vec<&ComparisonRow> = outcome
        .cells
        .iter()
        .filter(|c| c.verdict != Verdict::Missing)
        .collect();
    let missing = outcome.cells.len() - measured.len();
    let _ = writeln!(
        md,
        "### Published against reproduced\n\n<details><summary>{} measured cells ({missing} published numbers not measured; all in <code>{dir}/comparison.csv</code>)</summary>\n",
        measured.len()
    );
    let _ = writeln!(
        md,
        "| source | model | method | w/a | metric | published | reproduced (mean) | std | seeds | verdict |\n|---|---|---|---|---|---|---|---|---|---|"
    );
    for c in measured {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {}/{} | {} | {} | {} | {} | {} | {} |",
            cell(&c.source),
            cell(&c.model),
            cell(&c.method),
            c.w_bits,
            c.a_bits,
            cell(&c.metric),
            c.published,
            number(c.reproduced),
            number(c.std),
            c.seeds,
            c.verdict
        );
    }
    md.push_str("\n</details>\n\n");

    let mut figures: Vec<String> = std::fs::read_dir(root.join("results").join(dir))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".svg"))
                .collect()
        })
        .unwrap_or_default();
    figures.sort();
    if !figures.is_empty() {
        let _ = writeln!(md, "### Figures\n");
        for f in figures {
            let _ = writeln!(md, "![{dir}: {f}]({dir}/{f})\n");
        }
    }
    Ok(md)
}

/// `results/REPORT.md` for every paper under `experiments/`.
pub fn render(root: &Path, profile: Profile) -> Result<String, TableError> {
    let mut md = format!(
        "# Reproduction report\n\n\
         Generated by `make report` (`cargo run -p repro -- report`) from the committed {profile}-profile \
         results and each paper's `experiments/<paper>/claims.toml`; do not edit by hand (`make test` fails \
         when it is stale). A claim is *supported* when the 95 % Student-t interval of its statistic over \
         seeds lies on its side, *contradicted* when it lies on the other, *inconclusive* when it straddles \
         or rests on fewer than {} seeds, *untested* when rows are missing; `exact` claims are \
         deterministic. Cells get `match` / `deviates` only where the paper's own data and model ran; \
         proxy cells are judged through the claims.\n\n",
        claims::MIN_SEEDS
    );
    let outcomes: Vec<PaperOutcome> = paper_dirs(&root.join("experiments"))?
        .iter()
        .map(|dir| PaperOutcome::evaluate(root, dir, profile))
        .collect::<Result<_, _>>()?;
    md.push_str("| paper | outcome |\n|---|---|\n");
    for o in &outcomes {
        let _ = writeln!(md, "| [{0}](#{0}) | `{1}` |", o.dir, o.summary_line());
    }
    md.push('\n');
    for o in &outcomes {
        md.push_str(&paper_section(root, o)?);
    }
    Ok(md)
}

/// The relative links of a Markdown page (`[text](target)` and `![alt](target)`), anchors and web
/// addresses left out.
pub fn local_links(markdown: &str) -> Vec<String> {
    let mut links = Vec::new();
    let mut rest = markdown;
    while let Some(i) = rest.find("](") {
        rest = &rest[i + 2..];
        if let Some(end) = rest.find(')') {
            let target = &rest[..end];
            if !target.starts_with('#') && !target.contains("://") {
                links.push(target.to_string());
            }
            rest = &rest[end..];
        }
    }
    links
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_found_and_anchors_skipped() {
        let md = "see [a](x/y.md) and ![f](p/f.svg), [top](#p), [web](https://e.org)";
        assert_eq!(local_links(md), ["x/y.md", "p/f.svg"]);
    }
}
