//! Plain `cargo test` fails when `openapi.yaml` or the generated client no
//! longer match the server code.

#[test]
fn openapi_yaml_and_client_are_current() {
    let stale = xtask::check(&xtask::repo_root()).expect("generation runs");
    assert!(
        stale.is_empty(),
        "{}\n\ngenerated files are stale: run `cargo xtask gen` and commit the result",
        stale.join("\n\n")
    );
}
