//! Figures, the table on stdout and `latest.json`.

use std::fmt::Write as _;

use serde_json::{Map, Value, json};

/// min / median / max of a set of rounds.
#[derive(Clone, Copy, Debug)]
pub struct Summary {
    pub min: f64,
    pub median: f64,
    pub max: f64,
}

impl Summary {
    pub fn of(values: &[f64]) -> Option<Self> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Self {
            min: v[0],
            median,
            max: v[n - 1],
        })
    }

    pub fn json(&self, values: &[f64]) -> Value {
        json!({ "min": self.min, "median": self.median, "max": self.max, "rounds": values })
    }
}

/// One block of the table.
pub struct Section {
    pub title: String,
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
    pub footnotes: Vec<String>,
}

impl Section {
    pub fn new(title: &str, header: &[&str]) -> Self {
        Self {
            title: title.to_string(),
            header: header.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
            footnotes: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn note(&mut self, text: impl Into<String>) {
        self.footnotes.push(text.into());
    }
}

/// Everything one run measured.
#[derive(Default)]
pub struct Report {
    /// Flat figures: the keys of latest.json's top level.
    pub figures: Map<String, Value>,
    /// Per-round detail, per scenario.
    pub detail: Map<String, Value>,
    pub sections: Vec<Section>,
    /// Skipped scenarios and other things a reader must know.
    pub notes: Vec<String>,
    /// Scenarios that broke (not: that the machine cannot run): the run exits non-zero.
    pub failures: usize,
}

impl Report {
    pub fn set(&mut self, key: &str, value: impl Into<Value>) {
        self.figures.insert(key.to_string(), value.into());
    }

    pub fn detail(&mut self, key: &str, value: Value) {
        self.detail.insert(key.to_string(), value);
    }

    pub fn note(&mut self, text: impl Into<String>) {
        let text = text.into();
        eprintln!("[bench] note: {text}");
        self.notes.push(text);
    }

    /// A scenario broke: noted, and the run fails (`cargo xtask test` must notice).
    pub fn fail(&mut self, text: impl Into<String>) {
        self.failures += 1;
        self.note(format!("FAILED: {}", text.into()));
    }

    /// latest.json: `head` (what was measured where), then every figure at the top
    /// level, the notes and the per-round detail.
    pub fn document(&self, mut head: Map<String, Value>) -> Value {
        for (k, v) in &self.figures {
            head.insert(k.clone(), v.clone());
        }
        head.insert("notes".into(), json!(self.notes));
        head.insert("detail".into(), Value::Object(self.detail.clone()));
        Value::Object(head)
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        for s in &self.sections {
            let _ = writeln!(out, "\n{}", s.title);
            let cols = s.header.len();
            let mut width = vec![0usize; cols];
            for r in std::iter::once(&s.header).chain(&s.rows) {
                for (i, c) in r.iter().enumerate().take(cols) {
                    width[i] = width[i].max(c.chars().count());
                }
            }
            let line = |r: &Vec<String>| {
                let mut l = String::from(" ");
                for (i, c) in r.iter().enumerate().take(cols) {
                    let pad = width[i] - c.chars().count();
                    if i == 0 {
                        l.push_str(&format!(" {c}{} ", " ".repeat(pad)));
                    } else {
                        l.push_str(&format!(" {}{c} ", " ".repeat(pad)));
                    }
                }
                l.trim_end().to_string()
            };
            let _ = writeln!(out, "{}", line(&s.header));
            let total: usize = width.iter().map(|w| w + 2).sum::<usize>() + 1;
            let _ = writeln!(out, "  {}", "-".repeat(total.saturating_sub(2)));
            for r in &s.rows {
                let _ = writeln!(out, "{}", line(r));
            }
            for n in &s.footnotes {
                let _ = writeln!(out, "  * {n}");
            }
        }
        if !self.notes.is_empty() {
            let _ = writeln!(out, "\nNotes");
            for n in &self.notes {
                let _ = writeln!(out, "  - {n}");
            }
        }
        out
    }
}

/// `1.23` style, or `-` for a missing figure.
pub fn f2(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.2}")).unwrap_or_else(|| "-".into())
}

pub fn f0(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.0}")).unwrap_or_else(|| "-".into())
}

pub fn f1(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.1}")).unwrap_or_else(|| "-".into())
}

/// `min / median / max` with the given formatter.
pub fn mmm(s: Option<Summary>, f: fn(Option<f64>) -> String) -> [String; 3] {
    match s {
        Some(s) => [f(Some(s.min)), f(Some(s.median)), f(Some(s.max))],
        None => ["-".into(), "-".into(), "-".into()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_holds_the_figures_at_the_top_with_notes_and_detail() {
        let mut report = Report::default();
        report.set("mpps_ceiling", 3.5);
        report.detail("forward_ceiling", json!({ "label": "ceiling" }));
        report.notes.push("a note".into());
        let mut head = Map::new();
        head.insert("commit".into(), "abc".into());
        assert_eq!(
            report.document(head),
            json!({
                "commit": "abc",
                "mpps_ceiling": 3.5,
                "notes": ["a note"],
                "detail": { "forward_ceiling": { "label": "ceiling" } },
            })
        );
    }

    #[test]
    fn a_summary_is_the_min_median_and_max_of_the_finite_rounds() {
        let s = Summary::of(&[3.0, f64::NAN, 1.0, 4.0, 2.0]).expect("rounds");
        assert_eq!((s.min, s.median, s.max), (1.0, 2.5, 4.0));
        assert!(Summary::of(&[f64::NAN]).is_none());
    }
}
