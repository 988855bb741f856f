//! The committed report and figures: every SVG under results/ parses, keeps its text on the canvas, and
//! every link of results/REPORT.md resolves.

use std::path::{Path, PathBuf};

fn results_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../results")
}

fn committed_svgs() -> Vec<PathBuf> {
    let mut svgs = Vec::new();
    for paper in std::fs::read_dir(results_dir())
        .unwrap()
        .filter_map(Result::ok)
    {
        let Ok(entries) = std::fs::read_dir(paper.path()) else {
            continue;
        };
        svgs.extend(
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "svg")),
        );
    }
    svgs.sort();
    svgs
}

#[test]
fn every_committed_figure_parses_and_keeps_its_text_on_the_canvas() {
    let svgs = committed_svgs();
    assert!(!svgs.is_empty(), "no figures under results/");
    for path in svgs {
        let text = std::fs::read_to_string(&path).unwrap();
        let doc = roxmltree::Document::parse(&text)
            .unwrap_or_else(|e| panic!("{}: not well-formed SVG: {e}", path.display()));
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "svg", "{}", path.display());
        let dim =
            |name: &str| -> f64 { root.attribute(name).and_then(|v| v.parse().ok()).unwrap() };
        let (width, height) = (dim("width"), dim("height"));
        let mut texts = 0;
        for node in doc.descendants().filter(|n| n.has_tag_name("text")) {
            texts += 1;
            let at = |name: &str| -> f64 {
                node.attribute(name)
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0.0)
            };
            let (x, y) = (at("x"), at("y"));
            let content = node.text().unwrap_or_default().trim();
            assert!(
                (0.0..width).contains(&x) && (0.0..height).contains(&y),
                "{}: text {content:?} at ({x}, {y}) lies off the {width}x{height} canvas",
                path.display(),
            );
            // Its extent along the line it is written on, from an average sans-serif glyph width
            // (0.55 em), must fit on the canvas too: a long label runs off an edge, not just its anchor.
            let length = 0.55 * at("font-size") * content.chars().count() as f64;
            let (start, span) = match node.attribute("transform") {
                Some(t) if t.starts_with("rotate") => (y, height),
                _ => (x, width),
            };
            let (lo, hi) = match node.attribute("text-anchor") {
                Some("middle") => (start - length / 2.0, start + length / 2.0),
                Some("end") => (start - length, start),
                _ => (start, start + length),
            };
            assert!(
                lo >= -2.0 && hi <= span + 2.0,
                "{}: text {content:?} runs off the canvas ({lo:.0}..{hi:.0} of {span})",
                path.display(),
            );
        }
        assert!(
            texts > 5,
            "{}: a figure without axis labels",
            path.display()
        );
    }
}

#[test]
fn every_link_of_the_report_resolves() {
    let report = std::fs::read_to_string(results_dir().join("REPORT.md"))
        .expect("results/REPORT.md is committed: run make report");
    let links = repro::report::local_links(&report);
    assert!(
        links.iter().any(|l| l.ends_with(".svg")),
        "the report shows no figure"
    );
    for link in links {
        assert!(
            results_dir().join(&link).exists(),
            "results/REPORT.md links to {link}, which does not exist"
        );
    }
}
