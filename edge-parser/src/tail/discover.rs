//! Which paths the configured patterns name: literal paths as given, globs expanded again at
//! every rescan so that files created later are found.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::types::TailError;

/// One configured pattern.
#[derive(Debug)]
enum Matcher {
    /// A path without glob metacharacters: watched whether or not it exists yet.
    Literal(PathBuf),
    /// A glob, expanded at every rescan.
    Glob(glob::Pattern),
}

/// The configured patterns, validated.
#[derive(Debug)]
pub(crate) struct Patterns {
    list: Vec<(String, Matcher)>,
}

/// What one expansion found.
#[derive(Debug, Default)]
pub(crate) struct Expansion {
    /// Every matching path, once, in pattern order (each glob's matches sorted).
    pub(crate) paths: Vec<Arc<Path>>,
    /// Paths that could not be listed, with the reason.
    pub(crate) errors: Vec<(Arc<Path>, String)>,
}

impl Patterns {
    /// Validates `patterns`.
    pub(crate) fn new(patterns: &[String]) -> Result<Self, TailError> {
        if patterns.is_empty() {
            return Err(TailError::NoPatterns);
        }
        let mut list = Vec::with_capacity(patterns.len());
        for pattern in patterns {
            if pattern.is_empty() {
                return Err(TailError::BadPattern {
                    pattern: pattern.clone(),
                    reason: "empty pattern".to_owned(),
                });
            }
            let matcher = if pattern.contains(['*', '?', '[']) {
                let glob = glob::Pattern::new(pattern).map_err(|error| TailError::BadPattern {
                    pattern: pattern.clone(),
                    reason: error.to_string(),
                })?;
                Matcher::Glob(glob)
            } else {
                Matcher::Literal(PathBuf::from(pattern))
            };
            list.push((pattern.clone(), matcher));
        }
        Ok(Self { list })
    }

    /// The patterns as configured.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.list.iter().map(|(name, _)| name.as_str())
    }

    /// Whether the pattern at `index` names `path`.
    pub(crate) fn matches(&self, index: usize, path: &Path) -> bool {
        match self.list.get(index) {
            Some((_, Matcher::Literal(literal))) => literal == path,
            Some((_, Matcher::Glob(glob))) => glob.matches_path(path),
            None => false,
        }
    }

    /// Whether any pattern names `path`.
    pub(crate) fn any_matches(&self, path: &Path) -> bool {
        (0..self.list.len()).any(|index| self.matches(index, path))
    }

    /// Lists the paths the patterns name now. Literal paths are listed even when missing.
    pub(crate) fn expand(&self) -> Expansion {
        let mut expansion = Expansion::default();
        let mut seen = std::collections::HashSet::new();
        for (pattern, matcher) in &self.list {
            match matcher {
                Matcher::Literal(path) => {
                    let path: Arc<Path> = Arc::from(path.as_path());
                    if seen.insert(Arc::clone(&path)) {
                        expansion.paths.push(path);
                    }
                }
                Matcher::Glob(_) => {
                    // Validated in `new`, so only listing errors remain.
                    let Ok(entries) = glob::glob(pattern) else {
                        continue;
                    };
                    let mut matched = Vec::new();
                    for entry in entries {
                        match entry {
                            Ok(path) => matched.push(path),
                            Err(error) => expansion
                                .errors
                                .push((Arc::from(error.path()), error.error().to_string())),
                        }
                    }
                    matched.sort();
                    for path in matched {
                        let path: Arc<Path> = Arc::from(path);
                        if seen.insert(Arc::clone(&path)) {
                            expansion.paths.push(path);
                        }
                    }
                }
            }
        }
        expansion
    }
}

/// The regular files in `dir` with their metadata (symbolic links followed), for finding a
/// checkpointed file that was renamed to a name no pattern matches while we were stopped.
/// Entries that cannot be read are skipped: this is a best-effort search.
pub(crate) fn regular_files_in(dir: &Path) -> Vec<(PathBuf, fs::Metadata)> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let path = entry.path();
            let metadata = fs::metadata(&path).ok()?;
            metadata.is_file().then_some((path, metadata))
        })
        .collect();
    files.sort_by(|a, b| a.0.cmp(&b.0));
    files
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tail::test_helpers::TempDir;

    #[test]
    fn globs_expand_sorted_and_literals_are_kept_even_when_missing() {
        let dir = TempDir::new("discover");
        for name in ["b.log", "a.log", "c.txt"] {
            dir.write(name, "x\n");
        }
        let glob = format!("{}/*.log", dir.path().display());
        let literal = format!("{}/later.txt", dir.path().display());
        let patterns = Patterns::new(&[glob.clone(), literal.clone(), glob]).expect("valid");
        let expansion = patterns.expand();
        let paths: Vec<&Path> = expansion.paths.iter().map(AsRef::as_ref).collect();
        assert_eq!(
            paths,
            [
                dir.join("a.log").as_path(),
                dir.join("b.log").as_path(),
                Path::new(&literal),
            ]
        );
        assert!(expansion.errors.is_empty());
        assert!(patterns.any_matches(&dir.join("new.log")));
        assert!(patterns.any_matches(Path::new(&literal)));
        assert!(!patterns.any_matches(&dir.join("a.log.1")));
    }

    #[test]
    fn bad_and_empty_pattern_lists_are_refused() {
        assert_eq!(
            Patterns::new(&[]).unwrap_err().to_string(),
            "no log file pattern given"
        );
        assert_eq!(
            Patterns::new(&["/var/log/[.log".to_owned()])
                .unwrap_err()
                .to_string(),
            "bad pattern \"/var/log/[.log\": Pattern syntax error near position 9: invalid range pattern"
        );
    }
}
