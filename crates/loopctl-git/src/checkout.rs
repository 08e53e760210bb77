//! A clean copy of a commit's tree: gix's own checkout (the index made from the tree, then
//! written as git would: executable bits, symbolic links, `.gitattributes` filters) into a fresh
//! temporary directory, with no `.git` in it.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use gix::ObjectId;
use gix::worktree::stack::state::attributes::Source as AttributesSource;

use crate::{Error, Repository};

/// The copy and the temporary directory holding it, removed when dropped.
pub struct CleanCopy {
    dir: tempfile::TempDir,
    files: usize,
}

impl CleanCopy {
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// How many entries of the tree (files, links, submodules) were written.
    pub fn files(&self) -> usize {
        self.files
    }
}

impl Repository {
    /// Writes the commit's tree into a new temporary directory. Paths git refuses to check out
    /// (`.git`, `..`, names that are not one path component) fail the whole copy.
    ///
    /// # Errors
    /// The commit cannot be read, its tree holds a path that is not safe to write, or a file
    /// cannot be written.
    pub fn clean_copy(&self, commit: ObjectId) -> Result<CleanCopy, Error> {
        let tree = self
            .repo
            .find_commit(commit)
            .and_then(|c| c.tree_id())
            .map_err(Error::git(format!("read commit {commit}")))?
            .detach();
        let dir = tempfile::Builder::new()
            .prefix(&format!("loopctl-verify-{}-", commit.to_hex_with_len(12)))
            .tempdir()
            .map_err(Error::io("make a temporary directory"))?;
        let failed = |source| Error::Git { action: format!("check out {commit}"), source };
        // The attributes come from the tree being written, never from a work tree.
        let mut options = self.repo.checkout_options(AttributesSource::IdMapping).map_err(failed)?;
        options.destination_is_initially_empty = true;
        let mut index = gix::index::State::from_tree(&tree, &self.repo.objects, options.validate).map_err(failed)?;
        let objects = self.repo.objects.clone().into_arc().map_err(Error::io("share the object database"))?;
        let outcome = gix::worktree::state::checkout(
            &mut index,
            dir.path(),
            objects,
            &gix::progress::Discard,
            &gix::progress::Discard,
            &AtomicBool::new(false),
            options,
        )
        .map_err(failed)?;
        if !outcome.collisions.is_empty() {
            let paths = outcome.collisions.iter().map(|c| c.path.to_string()).collect();
            return Err(Error::Collisions { commit, paths });
        }
        Ok(CleanCopy { dir, files: index.entries().len() })
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use gix::objs::tree::{Entry, EntryKind};

    use super::*;
    use crate::testkit::{ScratchRepo, id};

    fn mode(path: &Path) -> u32 {
        std::fs::symlink_metadata(path).expect("written").permissions().mode() & 0o777
    }

    #[test]
    fn a_commit_with_an_executable_script_and_a_symlink_checks_out_with_the_mode_and_link_intact() {
        let repo = ScratchRepo::init();
        repo.write("tool.sh", "#!/bin/sh\necho tool ran\n");
        repo.make_executable("tool.sh");
        repo.write("notes/plain.txt", "plain\n");
        repo.symlink("tool.sh", "tool-link");
        repo.symlink("../tool.sh", "notes/up-link");
        let sha = repo.commit("tools");
        // The work tree moves on: the copy is of the commit, not of the checkout.
        repo.write("tool.sh", "changed after the commit\n");
        let mirror = tempfile::tempdir().expect("temp dir");
        let mirror = mirror.path().join("mirror.git");
        crate::sync_mirror(&repo.path().to_string_lossy(), &mirror).expect("mirrored");

        for (label, opened) in
            [("work tree", repo.open()), ("bare mirror", Repository::discover(&mirror).expect("open"))]
        {
            let copy = opened.clean_copy(id(&sha)).expect("checked out");
            let root = copy.path();
            let script = root.join("tool.sh");
            assert_eq!(std::fs::read_to_string(&script).ok().as_deref(), Some("#!/bin/sh\necho tool ran\n"), "{label}");
            assert_eq!(mode(&script) & 0o111, 0o111, "{label}: the script stays executable");
            assert_eq!(
                mode(&root.join("notes/plain.txt")) & 0o111,
                0,
                "{label}: a plain file does not become executable"
            );
            for (link, target) in [("tool-link", "tool.sh"), ("notes/up-link", "../tool.sh")] {
                let read = std::fs::read_link(root.join(link)).expect("a symbolic link");
                assert_eq!(read, Path::new(target), "{label}: {link} points where it did");
                assert!(root.join(link).is_file(), "{label}: {link} resolves inside the copy");
            }
            assert!(!root.join(".git").exists(), "{label}: no repository in the copy");
            assert_eq!(copy.files(), 4, "{label}");
            let dir = root.to_path_buf();
            drop(copy);
            assert!(!dir.exists(), "{label}: the copy is removed with its handle");
        }
    }

    /// A commit whose tree holds one entry named `name`: a file, or a directory holding a
    /// `config` file (what a planted `.git` would carry).
    fn commit_with_entry(repo: &ScratchRepo, name: &str, as_directory: bool) -> ObjectId {
        let opened = repo.open();
        let blob = opened.repo.write_blob("[core]\n\tfsmonitor = touch /tmp/pwned\n").expect("blob").detach();
        let file = |filename: &str| Entry { mode: EntryKind::Blob.into(), filename: filename.into(), oid: blob };
        let entry = if as_directory {
            let inner = opened.repo.write_object(gix::objs::Tree { entries: vec![file("config")] }).expect("tree");
            Entry { mode: EntryKind::Tree.into(), filename: name.into(), oid: inner.detach() }
        } else {
            file(name)
        };
        let tree = opened.repo.write_object(gix::objs::Tree { entries: vec![entry] }).expect("tree").detach();
        id(&repo.git(&["commit-tree", &tree.to_string(), "-m", "planted"]))
    }

    #[test]
    fn tree_entries_that_would_escape_or_plant_a_repository_are_refused() {
        let repo = ScratchRepo::init();
        for (name, as_directory) in
            [(".git", true), (".GIT", true), (".git", false), ("git~1", true), ("..", false), (".", false), ("", false)]
        {
            let commit = commit_with_entry(&repo, name, as_directory);
            let refused = repo.open().clean_copy(commit).err().map(|err| err.to_string()).unwrap_or_default();
            assert!(refused.contains("is invalid"), "{name:?} (a directory: {as_directory}) is refused: {refused}");
        }
    }
}
