//! Finding the rule files a project's `rules` entries name (files, folders, glob patterns),
//! walking each real folder once: a symbolic link back into a folder being walked is one
//! error naming the link, a folder that cannot be read is an error naming it, and a file
//! reached along several paths is read once.

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

use crate::diagnostic::{Diagnostic, FieldPath, SourceFile};

/// Expands the project's `rules` entries into rule files, sorted, each real file once.
pub fn find(
    project: &SourceFile,
    root: &Path,
    entries: &[String],
    problems: &mut Vec<Diagnostic>,
) -> Vec<PathBuf> {
    let problems_before = problems.len();
    let mut walk = Walk {
        project,
        at: FieldPath::default(),
        files: Vec::new(),
        seen: HashSet::new(),
        inside: Vec::new(),
        loops: HashSet::new(),
        problems,
    };
    for (index, entry) in entries.iter().enumerate() {
        walk.at = FieldPath::default().key("rules").index(index);
        walk.seen.clear();
        let full = root.join(entry);
        if entry.contains(['*', '?', '[']) {
            walk.glob(root, entry);
            continue;
        }
        match std::fs::metadata(&full) {
            Ok(metadata) if metadata.is_dir() => walk.folder(&full, &Want::Toml, 0),
            // Anything else is read as a rule file, which says what is wrong with it.
            Ok(_) => walk.files.push(full),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                let problem = project.at_path(&walk.at, format!("`{entry}` does not exist"));
                walk.problems.push(problem);
            }
            Err(err) => {
                let problem = project.at_path(&walk.at, format!("cannot read `{entry}`: {err}"));
                walk.problems.push(problem);
            }
        }
    }
    let files = once_each(walk.files);
    if files.is_empty() && problems.len() == problems_before {
        let at = FieldPath::default().key("rules");
        problems.push(
            project
                .at_path(&at, "no rule files found: the project would check nothing")
                .with_hint("add a rule file (see docs/guides/writing-rules.md) or fix `rules`"),
        );
    }
    files
}

/// Sorted, and without a second path to a file already listed (through a link).
fn once_each(mut files: Vec<PathBuf>) -> Vec<PathBuf> {
    files.sort();
    files.dedup();
    let mut real = HashSet::new();
    files.retain(|file| real.insert(file.canonicalize().unwrap_or_else(|_| file.clone())));
    files
}

/// Which files of a folder are rule files.
enum Want {
    /// Every `*.toml` below the folder.
    Toml,
    /// Those that match a glob pattern, relative to the walked folder; `depth` is how many
    /// folders deep a match can be (`None`: any, for `**`).
    Glob {
        base: PathBuf,
        pattern: glob::Pattern,
        depth: Option<usize>,
    },
}

struct Walk<'a> {
    project: &'a SourceFile,
    /// The `rules` entry being walked, which problems point at.
    at: FieldPath,
    files: Vec<PathBuf>,
    /// Real folders walked for this entry.
    seen: HashSet<PathBuf>,
    /// Real folders the walk is inside of, innermost last, with their paths as walked.
    inside: Vec<(PathBuf, PathBuf)>,
    /// Links already reported as loops (by another entry).
    loops: HashSet<PathBuf>,
    problems: &'a mut Vec<Diagnostic>,
}

impl Walk<'_> {
    /// The files matching a glob pattern `entry`: walks the folder its literal part names.
    fn glob(&mut self, root: &Path, entry: &str) {
        let components: Vec<Component<'_>> = Path::new(entry).components().collect();
        let literal_len = components
            .iter()
            .position(|c| c.as_os_str().to_string_lossy().contains(['*', '?', '[']))
            .unwrap_or(components.len());
        let literal = root.join(components[..literal_len].iter().collect::<PathBuf>());
        let rest = &components[literal_len..];
        let rest_text = rest
            .iter()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        let pattern = match glob::Pattern::new(&rest_text) {
            Ok(pattern) => pattern,
            Err(err) => {
                let problem = self
                    .project
                    .at_path(&self.at, format!("bad glob pattern: {err}"));
                self.problems.push(problem);
                return;
            }
        };
        let depth = (!rest_text.contains("**")).then(|| rest.len().saturating_sub(1));
        let literal_is_empty = literal.as_os_str().is_empty();
        let base = if literal_is_empty {
            PathBuf::from(".")
        } else {
            literal
        };
        if base.is_dir() {
            let before = self.files.len();
            let want = Want::Glob {
                base: base.clone(),
                pattern,
                depth,
            };
            self.folder(&base, &want, 0);
            if literal_is_empty {
                for file in &mut self.files[before..] {
                    *file = file.strip_prefix(".").unwrap_or(file).to_owned();
                }
            }
        }
    }

    /// Walks `dir` (found `depth` folders below the entry) for the files `want` asks for.
    fn folder(&mut self, dir: &Path, want: &Want, depth: usize) {
        let real = dir.canonicalize().unwrap_or_else(|_| dir.to_owned());
        if !self.seen.insert(real.clone()) {
            return;
        }
        let mut children = Vec::new();
        match std::fs::read_dir(dir) {
            Ok(entries) => {
                for entry in entries {
                    match entry {
                        Ok(entry) => children.push(entry.path()),
                        Err(err) => self.unreadable(dir, &err),
                    }
                }
            }
            Err(err) => {
                self.unreadable(dir, &err);
                return;
            }
        }
        children.sort();
        self.inside.push((real, dir.to_owned()));
        for path in children {
            let is_dir = std::fs::metadata(&path).is_ok_and(|m| m.is_dir());
            if !is_dir {
                if want.wants(&path, depth) {
                    self.files.push(path);
                }
                continue;
            }
            if !want.descends(depth) {
                continue;
            }
            let real = path.canonicalize().unwrap_or_else(|_| path.clone());
            match self.inside.iter().find(|(inside, _)| *inside == real) {
                Some((_, walked)) => {
                    let walked = walked.clone();
                    self.link_loop(&path, &walked);
                }
                None => self.folder(&path, want, depth + 1),
            }
        }
        self.inside.pop();
    }

    fn unreadable(&mut self, dir: &Path, err: &std::io::Error) {
        let problem = self
            .project
            .at_path(
                &self.at,
                format!("cannot read the folder `{}`: {err}", dir.display()),
            )
            .with_hint(
                "the rule files in it would not be checked: let trueup's user read it, or \
                 leave it out of `rules`",
            );
        self.problems.push(problem);
    }

    fn link_loop(&mut self, link: &Path, target: &Path) {
        if !self.loops.insert(link.to_owned()) {
            return;
        }
        let problem = self
            .project
            .at_path(
                &self.at,
                format!(
                    "`{}` links back to `{}`, a folder it is in: a loop, not followed",
                    link.display(),
                    target.display()
                ),
            )
            .with_hint("remove the link, or list the folders to check in `rules`");
        self.problems.push(problem);
    }
}

impl Want {
    /// Whether the file at `path`, `depth` folders below the entry, is a rule file.
    fn wants(&self, path: &Path, depth: usize) -> bool {
        match self {
            Want::Toml => path.extension().is_some_and(|ext| ext == "toml"),
            Want::Glob {
                base,
                pattern,
                depth: most,
            } => {
                let options = glob::MatchOptions {
                    case_sensitive: true,
                    require_literal_separator: true,
                    require_literal_leading_dot: false,
                };
                most.is_none_or(|most| depth == most)
                    && path
                        .strip_prefix(base)
                        .is_ok_and(|relative| pattern.matches_path_with(relative, options))
            }
        }
    }

    /// Whether a folder `depth` folders below the entry may hold rule files deeper down.
    fn descends(&self, depth: usize) -> bool {
        match self {
            Want::Toml => true,
            Want::Glob { depth: most, .. } => most.is_none_or(|most| depth < most),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(root: &Path, entries: &[&str]) -> Vec<String> {
        let project = SourceFile {
            path: root.join("trueup.toml"),
            text: String::new(),
        };
        let entries: Vec<String> = entries.iter().map(|e| e.to_string()).collect();
        let mut problems = Vec::new();
        let files = find(&project, root, &entries, &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        files
            .iter()
            .map(|f| f.strip_prefix(root).unwrap().display().to_string())
            .collect()
    }

    #[test]
    fn globs_match_as_glob_does() {
        // A folder name with a glob character: only the entry is a pattern.
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("project [1]");
        std::fs::create_dir_all(root.join("rules/sub/deep")).unwrap();
        for file in [
            "rules/a.toml",
            "rules/b.txt",
            "rules/sub/c.toml",
            "rules/sub/deep/d.toml",
        ] {
            std::fs::write(root.join(file), "").unwrap();
        }
        assert_eq!(found(&root, &["rules/*.toml"]), ["rules/a.toml"]);
        assert_eq!(found(&root, &["rules/*/*.toml"]), ["rules/sub/c.toml"]);
        assert_eq!(
            found(&root, &["rules/**/*.toml"]),
            ["rules/a.toml", "rules/sub/c.toml", "rules/sub/deep/d.toml"]
        );
        assert_eq!(
            found(&root, &["rules/?.t*"]),
            ["rules/a.toml", "rules/b.txt"]
        );
        assert_eq!(
            found(&root, &["rules"]),
            ["rules/a.toml", "rules/sub/c.toml", "rules/sub/deep/d.toml"]
        );
    }
}
