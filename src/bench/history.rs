//! Benchmark history: every finished run, one JSON object per line, oldest first. Lines that
//! do not parse (a newer Paddock's format, a torn write) are skipped, not fatal.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::Run;

pub struct History {
    path: PathBuf,
}

impl History {
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Adds a run at the end (one `write` of one line: readers never see half a run).
    pub fn append(&self, run: &Run) -> std::io::Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut line = serde_json::to_string(run).map_err(std::io::Error::other)?;
        line.push('\n');
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?
            .write_all(line.as_bytes())
    }

    /// Every readable run, oldest first; none when the file does not exist yet.
    pub fn list(&self) -> std::io::Result<Vec<Run>> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        Ok(text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .filter_map(|l| match serde_json::from_str(l) {
                Ok(run) => Some(run),
                Err(e) => {
                    tracing::warn!(path = %self.path.display(), "skipping a benchmark record: {e}");
                    None
                }
            })
            .collect())
    }

    pub fn get(&self, id: &str) -> std::io::Result<Option<Run>> {
        Ok(self.list()?.into_iter().find(|r| r.id == id))
    }

    /// Removes a run; `false` when there was none with that id. Rewrites the file through a
    /// temporary one and a rename, so a crash leaves the old or the new history.
    pub fn remove(&self, id: &str) -> std::io::Result<bool> {
        let runs = self.list()?;
        let kept: Vec<&Run> = runs.iter().filter(|r| r.id != id).collect();
        if kept.len() == runs.len() {
            return Ok(false);
        }
        let mut text = String::new();
        for run in kept {
            text.push_str(&serde_json::to_string(run).map_err(std::io::Error::other)?);
            text.push('\n');
        }
        let tmp = self.path.with_extension("jsonl.tmp");
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, &self.path)?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::sample_run;
    use super::*;
    use crate::test_util::TempDir;

    #[test]
    fn runs_round_trip_in_order_and_can_be_removed() {
        let dir = TempDir::new("bench-history");
        let history = History::new(dir.path().join("sub/history.jsonl"));
        assert!(history.list().unwrap().is_empty());
        let a = sample_run("a");
        let b = sample_run("b");
        history.append(&a).unwrap();
        history.append(&b).unwrap();
        assert_eq!(history.list().unwrap(), vec![a.clone(), b.clone()]);
        assert_eq!(history.get("b").unwrap(), Some(b.clone()));
        assert!(history.remove("a").unwrap());
        assert!(!history.remove("a").unwrap());
        assert_eq!(history.list().unwrap(), vec![b]);
    }

    #[test]
    fn unreadable_lines_are_skipped() {
        let dir = TempDir::new("bench-history-torn");
        let path = dir.path().join("history.jsonl");
        let run = sample_run("ok");
        let good = serde_json::to_string(&run).unwrap();
        std::fs::write(&path, format!("{{\"torn\n{good}\nnot json\n")).unwrap();
        assert_eq!(History::new(path).list().unwrap(), vec![run]);
    }
}
