//! A paper's claims (`experiments/<paper>/claims.toml`) judged over seeds.
//!
//! Proxy rows cannot be compared with the paper's numbers cell by cell (another data set, another model
//! size), but the paper's *claims* — "8-bit costs at most 2 points", "AdaptivFloat beats Uniform at 4 bits"
//! — can be tested on them. A claim names two selections of result rows (`a`, `b`), a statistic between
//! them and the side it must fall on:
//!
//! - `difference` is `a - b`, `ratio` is `a / b` (computed on logarithms, so the estimate is a geometric
//!   mean of per-seed ratios), `value` is `a` alone;
//! - with `basis = "seeds"` the statistic's 95 % Student-t interval is taken over seeds: paired by seed
//!   when both sides hold the same seeds, Welch's interval otherwise, a one-sample interval against a
//!   published number. The claim is *supported* when the interval lies on its side, *contradicted* when it
//!   lies on the other, *inconclusive* when it straddles or rests on fewer than [`MIN_SEEDS`] seeds;
//! - with `basis = "exact"` the statistic is deterministic (operation counts, bit-exact agreement, memory
//!   model): every row must be on the side, and one row on the other side contradicts;
//! - a claim with no rows on either side is *untested*.
//!
//! A side's rows must come from one setting (data set, proxy, training length): a rerun with other
//! settings does not get averaged into the statistic, it makes the claim inconclusive until the table is
//! cleaned. A claim is evaluated once per value of its `per` fields (say, per model), and once per value
//! of any selector field given as a list (say, per rival number format).

use crate::published::PublishedRow;
use crate::results::{ResultRow, TableError};
use crate::stats::{mean, one_sample, welch};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

/// Seeds a statistic needs before its interval can support or contradict a claim.
pub const MIN_SEEDS: usize = 3;

/// How the rows of one claim are reduced to a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Statistic {
    Difference,
    Ratio,
    Value,
}

/// Whether the statistic varies over seeds (judged by its interval) or is deterministic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Basis {
    #[default]
    Seeds,
    Exact,
}

/// The side of the threshold the statistic must fall on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Side {
    #[serde(rename = ">")]
    Above,
    #[serde(rename = ">=")]
    AtLeast,
    #[serde(rename = "<")]
    Below,
    #[serde(rename = "<=")]
    AtMost,
    /// `|statistic| <= threshold`.
    #[serde(rename = "within")]
    Within,
    /// Exactly the threshold (only for `basis = "exact"`).
    #[serde(rename = "=")]
    Equal,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Above => ">",
            Side::AtLeast => ">=",
            Side::Below => "<",
            Side::AtMost => "<=",
            Side::Within => "within ±",
            Side::Equal => "=",
        })
    }
}

/// A selector field's wanted value: one value, or a list that splits the claim into one instance each.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Wanted {
    One(String),
    Each(Vec<String>),
}

/// One side of a claim: `field = value` conditions on result rows (or on published rows).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Selector {
    /// `published` takes the side from `published.csv` instead of the results.
    #[serde(default)]
    pub from: Option<String>,
    #[serde(flatten)]
    pub fields: BTreeMap<String, Wanted>,
}

/// One claim of a paper, as written in `claims.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claim {
    pub id: String,
    /// Where the paper makes it (table, figure, section).
    pub source: String,
    /// The claim in words.
    pub claim: String,
    pub statistic: Statistic,
    #[serde(default)]
    pub basis: Basis,
    pub side: Side,
    pub threshold: f64,
    /// Fields whose values split the claim into instances judged separately (e.g. `["model"]`).
    #[serde(default)]
    pub per: Vec<String>,
    /// Conditions shared by both sides.
    #[serde(default, rename = "where")]
    pub shared: BTreeMap<String, Wanted>,
    pub a: Selector,
    #[serde(default)]
    pub b: Option<Selector>,
    /// Why this claim is judged the way it is (shown in the generated table).
    #[serde(default)]
    pub note: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClaimsFile {
    claim: Vec<Claim>,
}

/// Fields a selector or `per` may name: the columns shared by result and published rows, plus `proxy`.
pub const FIELDS: [&str; 9] = [
    "paper", "source", "dataset", "model", "method", "w_bits", "a_bits", "metric", "proxy",
];

/// Loads and checks `claims.toml`; every mistake is one line naming the file and the claim.
pub fn load(path: &Path) -> Result<Vec<Claim>, TableError> {
    let err = |m: String| TableError(format!("{}: {m}", path.display()));
    let text =
        std::fs::read_to_string(path).map_err(|e| err(format!("{e}: restore it from git")))?;
    let file: ClaimsFile = toml::from_str(&text).map_err(|e| {
        let line = e
            .span()
            .map_or(0, |s| text[..s.start].matches('\n').count() + 1);
        err(format!("line {line}: {}", e.message()))
    })?;
    let mut ids = BTreeSet::new();
    for c in &file.claim {
        let bad = |m: &str| err(format!("claim {}: {m}", c.id));
        if !ids.insert(c.id.clone()) {
            return Err(bad("duplicate id"));
        }
        let names = c
            .per
            .iter()
            .chain(c.shared.keys())
            .chain(c.a.fields.keys())
            .chain(c.b.iter().flat_map(|b| b.fields.keys()));
        for name in names {
            if !FIELDS.contains(&name.as_str()) {
                return Err(bad(&format!(
                    "unknown field {name:?} (fields: {})",
                    FIELDS.join(", ")
                )));
            }
        }
        for side in std::iter::once(&c.a).chain(c.b.as_ref()) {
            if side.from.as_deref().is_some_and(|f| f != "published") {
                return Err(bad("`from` may only be \"published\""));
            }
        }
        match (c.statistic, &c.b) {
            (Statistic::Value, Some(_)) => return Err(bad("a `value` statistic takes no `b`")),
            (Statistic::Difference | Statistic::Ratio, None) => {
                return Err(bad("a difference or ratio needs a `b` side"));
            }
            _ => {}
        }
        if c.a.from.is_some() {
            return Err(bad(
                "side `a` must be measured rows (put the published side in `b`)",
            ));
        }
        if c.side == Side::Equal && c.basis != Basis::Exact {
            return Err(bad("`=` needs basis = \"exact\"; over seeds use `within`"));
        }
        if !c.threshold.is_finite() {
            return Err(bad("threshold must be a finite number"));
        }
    }
    Ok(file.claim)
}

/// The outcome of one claim instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClaimVerdict {
    Supported,
    Contradicted,
    Inconclusive,
    Untested,
}

impl fmt::Display for ClaimVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ClaimVerdict::Supported => "supported",
            ClaimVerdict::Contradicted => "contradicted",
            ClaimVerdict::Inconclusive => "inconclusive",
            ClaimVerdict::Untested => "untested",
        })
    }
}

/// One line of `results/<paper>/claims.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClaimResult {
    pub id: String,
    /// The `per` values and list choices of this instance (`model=ResNet-50`), empty for a single one.
    pub instance: String,
    pub source: String,
    pub claim: String,
    /// The statistic in words (`top1_acc_pct: float - QAT`).
    pub statistic: String,
    /// `<= 2`, `> 0`, ...
    pub side: String,
    pub basis: Basis,
    /// Seeds behind the statistic (for `exact`, rows).
    pub seeds: usize,
    pub estimate: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    pub verdict: ClaimVerdict,
    /// Why a claim is inconclusive or untested; empty otherwise.
    pub reason: String,
    /// The claim file's note on how the claim is judged.
    pub note: String,
}

/// A row either side of a claim may select.
trait Selectable {
    fn field(&self, name: &str) -> &str;
}

/// `Selectable` for a row type, by the names of its string columns (the [`FIELDS`] it has).
macro_rules! selectable_by {
    ($row:ty: $($field:ident),+) => {
        impl Selectable for $row {
            fn field(&self, name: &str) -> &str {
                match name {
                    $(stringify!($field) => &self.$field,)+
                    _ => "",
                }
            }
        }
    };
}

selectable_by!(ResultRow: paper, source, dataset, model, method, w_bits, a_bits, metric, proxy);
// Published rows have no proxy: a claim's published side never selects on it.
selectable_by!(PublishedRow: paper, source, dataset, model, method, w_bits, a_bits, metric);

/// One instance of a claim: concrete conditions per side and the label of the list choices.
struct Instance {
    label: Vec<String>,
    a: BTreeMap<String, String>,
    b: BTreeMap<String, String>,
}

/// Every combination of the list-valued fields, in file order.
fn expand(claim: &Claim) -> Vec<Instance> {
    let mut out = vec![Instance {
        label: Vec::new(),
        a: BTreeMap::new(),
        b: BTreeMap::new(),
    }];
    let empty = BTreeMap::new();
    let b_fields = claim.b.as_ref().map_or(&empty, |b| &b.fields);
    let sides = [
        (None, &claim.shared),
        (Some("a"), &claim.a.fields),
        (Some("b"), b_fields),
    ];
    for (side, fields) in sides {
        for (name, wanted) in fields {
            let values = match wanted {
                Wanted::One(v) => vec![(v.clone(), false)],
                Wanted::Each(vs) => vs.iter().map(|v| (v.clone(), true)).collect(),
            };
            out = out
                .into_iter()
                .flat_map(|inst| {
                    values.iter().map(move |(v, listed)| {
                        let mut next = Instance {
                            label: inst.label.clone(),
                            a: inst.a.clone(),
                            b: inst.b.clone(),
                        };
                        if *listed {
                            let who = side.map_or(String::new(), |s| format!("[{s}]"));
                            next.label.push(format!("{name}{who}={v}"));
                        }
                        if side != Some("b") {
                            next.a.insert(name.clone(), v.clone());
                        }
                        if side != Some("a") {
                            next.b.insert(name.clone(), v.clone());
                        }
                        next
                    })
                })
                .collect();
        }
    }
    out
}

fn selects<R: Selectable>(row: &R, conditions: &BTreeMap<String, String>) -> bool {
    conditions.iter().all(|(k, v)| row.field(k) == v)
}

fn per_key<R: Selectable>(row: &R, per: &[String]) -> Vec<String> {
    per.iter()
        .map(|f| format!("{f}={}", row.field(f)))
        .collect()
}

/// The values one side contributes: per seed (measured) or one published number.
#[derive(Debug, Clone, PartialEq)]
enum Sample {
    Seeds(BTreeMap<u64, f64>),
    Constant(f64),
}

/// Why a side cannot be used.
enum Unusable {
    Missing(String),
    Ambiguous(String),
}

fn measured_sample(rows: &[&ResultRow], side: &str) -> Result<Sample, Unusable> {
    if rows.is_empty() {
        return Err(Unusable::Missing(format!("no rows for {side}")));
    }
    let settings: BTreeSet<(&str, &str, u32)> = rows
        .iter()
        .map(|r| (r.dataset.as_str(), r.proxy.as_str(), r.epochs))
        .collect();
    if settings.len() > 1 {
        let differ = |n: usize| {
            let mut names = Vec::new();
            let first = settings.iter().next().expect("two settings");
            let same = |f: &dyn Fn(&(&str, &str, u32)) -> String| {
                settings.iter().all(|s| f(s) == f(first))
            };
            if !same(&|s| s.0.to_string()) {
                names.push("data set");
            }
            if !same(&|s| s.1.to_string()) {
                names.push("proxy");
            }
            if !same(&|s| s.2.to_string()) {
                names.push("epochs");
            }
            format!(
                "{side} mixes {n} settings (other {}); narrow its selector or remove the stray rows",
                names.join(", ")
            )
        };
        return Err(Unusable::Ambiguous(differ(settings.len())));
    }
    let mut seeds = BTreeMap::new();
    for r in rows {
        if let Some(old) = seeds.insert(r.seed, r.value)
            && old != r.value
        {
            return Err(Unusable::Ambiguous(format!(
                "{side} has two values for seed {}; narrow its selector",
                r.seed
            )));
        }
    }
    Ok(Sample::Seeds(seeds))
}

fn published_sample(rows: &[&PublishedRow], side: &str) -> Result<Sample, Unusable> {
    let values: BTreeSet<u64> = rows.iter().map(|r| r.value.to_bits()).collect();
    match values.len() {
        0 => Err(Unusable::Missing(format!("no published row for {side}"))),
        1 => Ok(Sample::Constant(rows[0].value)),
        n => Err(Unusable::Ambiguous(format!(
            "{side} selects {n} different published values; narrow its selector"
        ))),
    }
}

/// Per-seed statistic values (paired or against a constant), or the two samples for Welch's interval.
enum Reduced {
    Paired(Vec<f64>),
    Unpaired(Vec<f64>, Vec<f64>),
}

fn reduce(statistic: Statistic, a: &Sample, b: Option<&Sample>) -> Result<Reduced, String> {
    let f = |x: f64| -> Result<f64, String> {
        match statistic {
            Statistic::Ratio if x <= 0.0 => Err(format!("ratio of a non-positive value ({x})")),
            Statistic::Ratio => Ok(x.ln()),
            _ => Ok(x),
        }
    };
    let values = |s: &Sample| -> Result<Vec<f64>, String> {
        match s {
            Sample::Seeds(m) => m.values().map(|&x| f(x)).collect(),
            Sample::Constant(c) => Ok(vec![f(*c)?]),
        }
    };
    let Some(b) = b else {
        return values(a).map(Reduced::Paired);
    };
    match (a, b) {
        (Sample::Seeds(x), Sample::Seeds(y)) if x.keys().eq(y.keys()) => x
            .iter()
            .map(|(s, &xa)| Ok(f(xa)? - f(y[s])?))
            .collect::<Result<_, String>>()
            .map(Reduced::Paired),
        (Sample::Seeds(_), Sample::Seeds(_)) => Ok(Reduced::Unpaired(values(a)?, values(b)?)),
        (Sample::Seeds(x), Sample::Constant(c)) => {
            let c = f(*c)?;
            x.values()
                .map(|&v| Ok(f(v)? - c))
                .collect::<Result<_, String>>()
                .map(Reduced::Paired)
        }
        (Sample::Constant(_), _) => Err("side a must be measured".into()),
    }
}

/// Where the interval lies against the side: `Some(true)` on it, `Some(false)` on the other side.
fn side_of(side: Side, threshold: f64, low: f64, high: f64) -> Option<bool> {
    let (on, off) = match side {
        Side::Above => (low > threshold, high <= threshold),
        Side::AtLeast => (low >= threshold, high < threshold),
        Side::Below => (high < threshold, low >= threshold),
        Side::AtMost => (high <= threshold, low > threshold),
        Side::Within => (
            low >= -threshold && high <= threshold,
            high < -threshold || low > threshold,
        ),
        Side::Equal => (low == threshold && high == threshold, false),
    };
    if on {
        Some(true)
    } else if off || side == Side::Equal {
        // An exact equality that does not hold everywhere is contradicted by the rows that miss it.
        Some(false)
    } else {
        None
    }
}

/// The judgement of one instance from its two samples.
struct Judged {
    seeds: usize,
    estimate: Option<f64>,
    /// The 95 % interval (seeds) or the range of the rows (exact); `None` below two seeds.
    bounds: Option<(f64, f64)>,
    verdict: ClaimVerdict,
    reason: String,
}

impl Judged {
    /// No statistic at all: rows missing or unusable.
    fn without_rows(verdict: ClaimVerdict, reason: String) -> Self {
        Judged {
            seeds: 0,
            estimate: None,
            bounds: None,
            verdict,
            reason,
        }
    }
}

fn judge(claim: &Claim, a: &Sample, b: Option<&Sample>) -> Judged {
    let reduced = match reduce(claim.statistic, a, b) {
        Ok(r) => r,
        Err(e) => return Judged::without_rows(ClaimVerdict::Inconclusive, e),
    };
    // Ratios are reduced on logarithms; estimates and bounds are reported as ratios.
    let back = |v: f64| match claim.statistic {
        Statistic::Ratio => v.exp(),
        _ => v,
    };
    let (seeds, estimate, bounds) = match (claim.basis, &reduced) {
        (Basis::Exact, reduced) => {
            let values: Vec<f64> = match reduced {
                Reduced::Paired(v) => v.clone(),
                Reduced::Unpaired(x, y) => x
                    .iter()
                    .flat_map(|xa| y.iter().map(move |yb| xa - yb))
                    .collect(),
            };
            let low = values.iter().copied().fold(f64::INFINITY, f64::min);
            let high = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            (values.len(), mean(&values), Some((low, high)))
        }
        (Basis::Seeds, Reduced::Paired(v)) => {
            let interval = one_sample(v).map(|i| (i.low, i.high));
            (v.len(), mean(v), interval)
        }
        (Basis::Seeds, Reduced::Unpaired(x, y)) => {
            let interval = welch(x, y).map(|i| (i.low, i.high));
            let estimate = mean(x).zip(mean(y)).map(|(p, q)| p - q);
            (x.len().min(y.len()), estimate, interval)
        }
    };
    let (estimate, bounds) = (estimate.map(back), bounds.map(|(l, h)| (back(l), back(h))));
    let (verdict, reason) = match (claim.basis, bounds) {
        (Basis::Seeds, _) if seeds < MIN_SEEDS => (
            ClaimVerdict::Inconclusive,
            format!("{seeds} seed(s); needs {MIN_SEEDS}"),
        ),
        (_, None) => (ClaimVerdict::Inconclusive, "no interval".into()),
        // An exact claim is contradicted by any row off its side.
        (Basis::Exact, Some((l, h))) => match side_of(claim.side, claim.threshold, l, h) {
            Some(true) => (ClaimVerdict::Supported, String::new()),
            _ => (ClaimVerdict::Contradicted, String::new()),
        },
        (Basis::Seeds, Some((l, h))) => match side_of(claim.side, claim.threshold, l, h) {
            Some(true) => (ClaimVerdict::Supported, String::new()),
            Some(false) => (ClaimVerdict::Contradicted, String::new()),
            None => (
                ClaimVerdict::Inconclusive,
                "interval straddles the threshold".into(),
            ),
        },
    };
    Judged {
        seeds,
        estimate,
        bounds,
        verdict,
        reason,
    }
}

/// `top1_acc_pct: float - QAT` from the selectors' own fields.
fn describe(claim: &Claim, inst: &Instance) -> String {
    // A side named by one field reads as its value; by several, as `field=value` pairs, so
    // `w_bits=4 a_bits=8` cannot be read the wrong way round.
    let own = |conds: &BTreeMap<String, String>, fields: &BTreeMap<String, Wanted>| {
        let picked: Vec<(&String, &String)> = fields
            .keys()
            .filter_map(|k| conds.get(k).map(|v| (k, v)))
            .collect();
        match picked.as_slice() {
            [] => "ours".to_string(),
            [(_, v)] => v.to_string(),
            many => many
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" "),
        }
    };
    let metric = inst
        .a
        .get("metric")
        .map_or(String::new(), |m| format!("{m}: "));
    let a = own(&inst.a, &claim.a.fields);
    let b = |b: &Selector| match (&b.from, b.fields.is_empty()) {
        (Some(_), true) => "paper".to_string(),
        (Some(_), false) => format!("{} (paper)", own(&inst.b, &b.fields)),
        (None, _) => own(&inst.b, &b.fields),
    };
    match (&claim.b, claim.statistic) {
        (Some(side), Statistic::Difference) => format!("{metric}{a} − {}", b(side)),
        (Some(side), Statistic::Ratio) => format!("{metric}{a} / {}", b(side)),
        _ => format!("{metric}{a}"),
    }
}

/// The rows of one instance: side `a`, side `b` measured, side `b` published.
type SideRows<'r> = (
    Vec<&'r ResultRow>,
    Vec<&'r ResultRow>,
    Vec<&'r PublishedRow>,
);

/// Judges every instance of `claim` on the measured rows (one profile) and the published rows.
pub fn evaluate(
    claim: &Claim,
    results: &[ResultRow],
    published: &[PublishedRow],
) -> Vec<ClaimResult> {
    let mut out = Vec::new();
    for inst in expand(claim) {
        // Group both sides by the `per` fields.
        let mut groups: BTreeMap<Vec<String>, SideRows> = BTreeMap::new();
        for r in results.iter().filter(|r| selects(*r, &inst.a)) {
            groups.entry(per_key(r, &claim.per)).or_default().0.push(r);
        }
        if let Some(b) = &claim.b {
            if b.from.is_some() {
                for p in published.iter().filter(|p| selects(*p, &inst.b)) {
                    groups.entry(per_key(p, &claim.per)).or_default().2.push(p);
                }
            } else {
                for r in results.iter().filter(|r| selects(*r, &inst.b)) {
                    groups.entry(per_key(r, &claim.per)).or_default().1.push(r);
                }
            }
        }
        if groups.is_empty() {
            groups.insert(Vec::new(), Default::default());
        }
        for (key, (a_rows, b_rows, p_rows)) in groups {
            // A `per` field already fixed by a listed value is named once.
            let listed = |k: &String| {
                inst.label
                    .iter()
                    .any(|l| l.split('=').next() == k.split('=').next())
            };
            let instance = inst
                .label
                .iter()
                .chain(key.iter().filter(|k| !listed(k)))
                .cloned()
                .collect::<Vec<_>>()
                .join(", ");
            let a = measured_sample(&a_rows, "a");
            let b = claim.b.as_ref().map(|b| {
                if b.from.is_some() {
                    published_sample(&p_rows, "b")
                } else {
                    measured_sample(&b_rows, "b")
                }
            });
            let judged = match (a, b.transpose()) {
                (Err(Unusable::Missing(m)), _) | (_, Err(Unusable::Missing(m))) => {
                    Judged::without_rows(ClaimVerdict::Untested, m)
                }
                (Err(Unusable::Ambiguous(m)), _) | (_, Err(Unusable::Ambiguous(m))) => {
                    Judged::without_rows(ClaimVerdict::Inconclusive, m)
                }
                (Ok(a), Ok(b)) => judge(claim, &a, b.as_ref()),
            };
            let finite = |x: f64| x.is_finite().then_some(x);
            out.push(ClaimResult {
                id: claim.id.clone(),
                instance,
                source: claim.source.clone(),
                claim: claim.claim.clone(),
                statistic: describe(claim, &inst),
                side: format!("{} {}", claim.side, claim.threshold),
                basis: claim.basis,
                seeds: judged.seeds,
                estimate: judged.estimate.and_then(finite),
                ci_low: judged.bounds.and_then(|b| finite(b.0)),
                ci_high: judged.bounds.and_then(|b| finite(b.1)),
                verdict: judged.verdict,
                reason: judged.reason,
                note: claim.note.clone(),
            });
        }
    }
    out
}

/// Counts in summary order: supported, contradicted, inconclusive, untested.
pub fn counts(results: &[ClaimResult]) -> [usize; 4] {
    let n = |v: ClaimVerdict| results.iter().filter(|r| r.verdict == v).count();
    [
        n(ClaimVerdict::Supported),
        n(ClaimVerdict::Contradicted),
        n(ClaimVerdict::Inconclusive),
        n(ClaimVerdict::Untested),
    ]
}

/// Text as one Markdown table cell: a `|` would end the cell, a line break the row.
pub(crate) fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// A number in a Markdown table: four decimals, `–` when there is none.
pub(crate) fn number(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_string(), |x| format!("{x:.4}"))
}

/// The claims table in Markdown, for `results/<paper>/claims.md`.
pub fn markdown(results: &[ClaimResult]) -> String {
    let mut md = String::from(
        "| id | claim | where in the paper | instance | statistic | side | seeds | estimate [95 % CI] | verdict |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    let mut previous_id = None;
    for r in results {
        // The claim's words once per claim, not once per instance.
        let first = previous_id != Some(&r.id);
        previous_id = Some(&r.id);
        let (claim, source) = if first {
            let claim = if r.note.is_empty() {
                r.claim.clone()
            } else {
                format!("{} ({})", r.claim, r.note)
            };
            (claim, r.source.clone())
        } else {
            (String::new(), String::new())
        };
        let interval = match (r.ci_low, r.ci_high) {
            (Some(l), Some(h)) if r.basis == Basis::Exact => format!(
                "{} [min {}, max {}]",
                number(r.estimate),
                number(Some(l)),
                number(Some(h))
            ),
            (Some(l), Some(h)) => {
                format!(
                    "{} [{}, {}]",
                    number(r.estimate),
                    number(Some(l)),
                    number(Some(h))
                )
            }
            _ => number(r.estimate),
        };
        let verdict = if r.reason.is_empty() {
            format!("**{}**", r.verdict)
        } else {
            format!("**{}** ({})", r.verdict, r.reason)
        };
        let seeds = match r.basis {
            Basis::Exact => format!("{} (exact)", r.seeds),
            Basis::Seeds => r.seeds.to_string(),
        };
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            cell(&r.id),
            cell(&claim),
            cell(&source),
            cell(&r.instance),
            cell(&r.statistic),
            cell(&r.side),
            seeds,
            interval,
            cell(&verdict)
        ));
    }
    md
}

#[cfg(test)]
mod tests;
