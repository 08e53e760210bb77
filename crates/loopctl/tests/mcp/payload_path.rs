//! `import_stories`' `payload_path` reads a file of the MCP server's machine, named by the
//! agent. The attacks: a path that climbs out with `../`, an absolute path elsewhere, a
//! symbolic link inside the working directory pointing outside, and `/proc/self/environ`
//! (the process's environment: the API keys), directly and as `/tmp/../proc/self/environ`.
//! Each is refused with `validation_failed` saying the file must be inside the working
//! directory, and nothing is imported; a real file inside is read.

use serde_json::{Value, json};

use crate::support::*;

fn doc(number: i64) -> Value {
    json!({"epics": [{"number": number, "title": format!("Epic {number}"), "stories": [
        {"number": format!("{number}.1"), "title": "From a file", "acceptance_criteria": [{"id": "AC-1", "description": "read"}]}]}]})
}

async fn refused(mcp: &Mcp, path: &str) {
    let args = json!({"project_id": "shop", "payload_path": path, "merge": true});
    let (code, message) = fails(mcp, "import_stories", args).await;
    assert_eq!(code, "validation_failed", "{path}: {message}");
    assert!(message.contains("must be inside the MCP server's working directory"), "{path}: {message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payload_path_outside_the_working_directory_is_refused_and_a_file_inside_is_read() {
    let w = World::start().await;
    let project = w.project("shop").await;
    let mcp = w.mcp(&[("LOOPCTL_ORCH_KEY", &w.keys.orch)]).await;
    // The MCP server runs in w.dir (see `World`); `outside` is a sibling directory.
    let outside = tempfile::Builder::new().prefix("loopctl-outside-").tempdir().expect("temp dir");
    let secret = outside.path().join("doc.json");
    std::fs::write(&secret, doc(7).to_string()).expect("write the outside file");
    let outside_name = outside.path().file_name().expect("a name").to_string_lossy().into_owned();

    refused(&mcp, &format!("../{outside_name}/doc.json")).await;
    refused(&mcp, &format!("{}/../{outside_name}/doc.json", w.dir.root().display())).await;
    refused(&mcp, &format!("sub/../../{outside_name}/doc.json")).await;
    refused(&mcp, &secret.to_string_lossy()).await;
    refused(&mcp, "/etc/passwd").await;
    refused(&mcp, "/proc/self/environ").await;
    refused(&mcp, "/tmp/../proc/self/environ").await;
    refused(&mcp, "/dev/stdin").await;
    refused(&mcp, "does-not-exist.json").await;
    #[cfg(unix)]
    {
        let link = w.dir.path("innocent.json");
        std::os::unix::fs::symlink(&secret, &link).expect("symlink to the outside file");
        refused(&mcp, &link.to_string_lossy()).await;
        refused(&mcp, "innocent.json").await;
        let dir_link = w.dir.path("elsewhere");
        std::os::unix::fs::symlink(outside.path(), &dir_link).expect("symlink to the outside directory");
        refused(&mcp, "elsewhere/doc.json").await;
        let proc_link = w.dir.path("env.json");
        std::os::unix::fs::symlink("/proc/self/environ", &proc_link).expect("symlink to /proc/self/environ");
        refused(&mcp, "env.json").await;
    }
    let epics = w.get(&w.keys.orch, &format!("/api/v1/projects/{project}/epics")).await;
    assert_eq!(epics["data"], json!([]), "nothing was imported from outside");

    // Inside the working directory: absolute, relative, in a subdirectory, through a link
    // that stays inside.
    let inside = w.dir.path("plan.json");
    std::fs::write(&inside, doc(1).to_string()).expect("write the inside file");
    std::fs::create_dir_all(w.dir.path("plans")).expect("mkdir");
    std::fs::write(w.dir.path("plans/second.json"), doc(2).to_string()).expect("write");
    let imported = ok(
        &mcp,
        "import_stories",
        json!({"project_id": "shop", "payload_path": inside.to_string_lossy(), "merge": true}),
    )
    .await;
    assert_eq!(imported["import"]["stories_created"], 1, "{imported}");
    ok(&mcp, "import_stories", json!({"project_id": "shop", "payload_path": "plans/second.json", "merge": true})).await;
    #[cfg(unix)]
    {
        std::fs::write(w.dir.path("plans/third.json"), doc(3).to_string()).expect("write");
        std::os::unix::fs::symlink(w.dir.path("plans/third.json"), w.dir.path("third.json")).expect("symlink inside");
        ok(&mcp, "import_stories", json!({"project_id": "shop", "payload_path": "third.json", "merge": true})).await;
    }
    let epics = w.get(&w.keys.orch, &format!("/api/v1/projects/{project}/epics")).await;
    let numbers: Vec<i64> =
        epics["data"].as_array().expect("epics").iter().filter_map(|e| e["number"].as_i64()).collect();
    assert!(numbers.contains(&1) && numbers.contains(&2) && !numbers.contains(&7), "{numbers:?}");
}
