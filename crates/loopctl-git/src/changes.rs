//! What a commit changed: gix's tree diff of its tree against its first parent's (the empty
//! tree for a root commit), as the paths of files, links and submodules.

use gix::ObjectId;
use gix::object::tree::diff::ChangeDetached;
use gix::objs::tree::EntryMode;

use crate::{Error, Repository};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChangeKind {
    Added,
    Modified,
    Deleted,
}

/// One path the commit changed. Directories are not listed themselves, only what is in them;
/// a file that became a directory (or the reverse) is a deleted and an added path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Change {
    pub path: String,
    pub kind: ChangeKind,
}

impl Repository {
    /// Every path the commit changed against its first parent, sorted by path. A changed mode
    /// (the executable bit, a file turned into a link) is a modification.
    ///
    /// # Errors
    /// The commit, its parent or one of their trees cannot be read.
    pub fn changes(&self, commit: ObjectId) -> Result<Vec<Change>, Error> {
        let found = self.repo.find_commit(commit).map_err(Error::git(format!("read commit {commit}")))?;
        let new = found.tree().map_err(Error::git(format!("read the tree of {commit}")))?;
        let old = match found.parent_ids().next() {
            Some(parent) => Some(
                parent
                    .object()
                    .and_then(|p| p.peel_to_tree())
                    .map_err(Error::git(format!("read the parent {parent} of {commit}")))?,
            ),
            None => None,
        };
        let mut options = gix::diff::Options::default();
        // A rename is a deletion and an addition: a report names the paths it touched.
        options.track_path().track_rewrites(None);
        let detached = self
            .repo
            .diff_tree_to_tree(old.as_ref(), Some(&new), Some(options))
            .map_err(Error::git(format!("diff commit {commit}")))?;
        let mut changes: Vec<Change> = detached.into_iter().flat_map(of_entry).collect();
        changes.sort();
        Ok(changes)
    }
}

/// The listed paths of one change of gix's diff: none for a directory.
fn of_entry(change: ChangeDetached) -> Vec<Change> {
    let listed = |path: &gix::bstr::BString, mode: EntryMode, kind| {
        (!mode.is_tree()).then(|| Change { path: path.to_string(), kind })
    };
    match change {
        ChangeDetached::Addition { location, entry_mode, .. } => {
            listed(&location, entry_mode, ChangeKind::Added).into_iter().collect()
        }
        ChangeDetached::Deletion { location, entry_mode, .. } => {
            listed(&location, entry_mode, ChangeKind::Deleted).into_iter().collect()
        }
        ChangeDetached::Modification { location, entry_mode, .. } => {
            listed(&location, entry_mode, ChangeKind::Modified).into_iter().collect()
        }
        ChangeDetached::Rewrite { source_location, source_entry_mode, location, entry_mode, copy, .. } => {
            let source = (!copy).then(|| listed(&source_location, source_entry_mode, ChangeKind::Deleted)).flatten();
            source.into_iter().chain(listed(&location, entry_mode, ChangeKind::Added)).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{ScratchRepo, id};

    fn paths(changes: &[Change]) -> Vec<&str> {
        changes.iter().map(|c| c.path.as_str()).collect()
    }

    #[test]
    fn the_diff_of_a_commit_lists_exactly_its_added_modified_and_deleted_paths() {
        let repo = ScratchRepo::init();
        for path in ["keep.txt", "edit.txt", "gone.txt", "run.sh", "docs/guide.md"] {
            repo.write(path, "before\n");
        }
        repo.commit("root");
        repo.write("edit.txt", "after\n");
        repo.write("new/deep/file.txt", "new\n");
        repo.git(&["rm", "-q", "gone.txt"]);
        repo.make_executable("run.sh");
        let sha = repo.commit("work");
        let changes = repo.open().changes(id(&sha)).expect("diff");
        let expected = [
            ("edit.txt", ChangeKind::Modified),
            ("gone.txt", ChangeKind::Deleted),
            ("new/deep/file.txt", ChangeKind::Added),
            ("run.sh", ChangeKind::Modified),
        ];
        let expected: Vec<Change> =
            expected.into_iter().map(|(path, kind)| Change { path: path.to_string(), kind }).collect();
        assert_eq!(changes, expected, "keep.txt and docs/ did not change; directories are not paths of their own");
    }

    #[test]
    fn the_root_commit_is_compared_with_the_empty_tree() {
        let repo = ScratchRepo::init();
        repo.write("a/b/c.txt", "x\n");
        let sha = repo.commit("root");
        let changed = repo.open().changes(id(&sha)).expect("diff");
        assert_eq!(paths(&changed), vec!["a/b/c.txt"]);
    }

    #[test]
    fn deletions_mode_changes_and_type_changes_are_changes() {
        let repo = ScratchRepo::init();
        repo.write("keep.txt", "k\n");
        repo.write("gone/x.txt", "x\n");
        repo.write("run.sh", "true\n");
        repo.write("swap", "file\n");
        repo.commit("root");
        repo.git(&["rm", "-q", "-r", "gone"]);
        repo.make_executable("run.sh");
        std::fs::remove_file(repo.path().join("swap")).expect("rm");
        repo.write("swap/inner.txt", "now a dir\n");
        let sha = repo.commit("changes");
        let changed = repo.open().changes(id(&sha)).expect("diff");
        assert_eq!(paths(&changed), vec!["gone/x.txt", "run.sh", "swap", "swap/inner.txt"]);
    }
}
