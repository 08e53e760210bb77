//! The Markdown file an agent is pointed at (`LOOPCTL_PROMPT_FILE`): the story, its criteria,
//! what its role does, and the exact `loopctl` commands it runs.

use std::fmt::Write as _;

use loopctl_api::StoryDetail;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Implementer,
    Reviewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Implementer => "implementer",
            Role::Reviewer => "reviewer",
        }
    }
}

pub fn write(story: &StoryDetail, role: Role, attempt: u32, rejection: Option<&str>) -> String {
    let s = &story.story;
    let mut out = format!(
        "# Story {}: {}\n\nYou are the **{}** of this story (attempt {attempt}).\n\n",
        s.number,
        s.title,
        role.as_str()
    );
    if let Some(description) = s.description.as_deref().filter(|d| !d.trim().is_empty()) {
        let _ = writeln!(out, "{description}\n");
    }
    out.push_str("## Acceptance criteria\n\n");
    for criterion in &story.criteria {
        let _ = writeln!(out, "- **{}**: {}", criterion.ac_id, criterion.text);
    }
    if story.criteria.is_empty() {
        out.push_str("(none listed: the title is the requirement)\n");
    }
    if let Some(reason) = rejection.filter(|r| !r.trim().is_empty()) {
        let _ = writeln!(out, "\n## Why the last attempt was rejected\n\n{reason}");
    }
    out.push_str(match role {
        Role::Implementer => IMPLEMENTER,
        Role::Reviewer => REVIEWER,
    });
    out
}

const IMPLEMENTER: &str = r#"
## What you do

You work in `$LOOPCTL_WORKTREE`, a git worktree on branch `$LOOPCTL_BRANCH`, started from the
base commit `$LOOPCTL_BASE`. Your loopctl key (`$LOOPCTL_API_KEY`) is good for this story only.

```
loopctl contract $LOOPCTL_STORY
loopctl claim $LOOPCTL_STORY
loopctl start $LOOPCTL_STORY
# ... do the work; commit it in this worktree (git add, git commit) ...
loopctl report $LOOPCTL_STORY --commit HEAD --evidence AC-1=file:path/to/proof ...
```

Commit before you report: a report that names no new commit is rejected. Give evidence for
every criterion (`--evidence AC-n=test:…`, `file:…`, `commit:…` or `note:…`). If you know what
you spent, add `--token-usage input=N,output=N,cost_usd=X` to the report. You do not review
or verify your own work; a different agent reviews it, and loopctl checks it.
"#;

const REVIEWER: &str = r#"
## What you do

You review someone else's work: `$LOOPCTL_WORKTREE` has the reported commit checked out; the
base it started from is `$LOOPCTL_BASE` (`git diff $LOOPCTL_BASE HEAD` shows the change). Check
every criterion against the code, then record your review, with a verdict per criterion:

```
loopctl review-complete $LOOPCTL_STORY --summary "…" --verdict AC-1=pass --verdict AC-2=fail:why
```

A criterion that is not met is a `fail` with the reason; the story then goes back to a fresh
implementer. If you know what you spent, add `--token-usage input=N,output=N,cost_usd=X`.
Do not change the code.
"#;
