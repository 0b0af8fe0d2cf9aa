//! Probes, the live spec and Swagger UI.

use super::*;

e2e! {
    async fn probes_spec_and_swagger_ui_are_served(backend) {
        let server = TestServer::start(backend).await;
        let client = server.anonymous();
        let live = client.health_live().send().await.unwrap().into_inner();
        assert_eq!(live.status, "ok");
        let ready = client.health_ready().send().await.unwrap().into_inner();
        assert_eq!(ready.status, "ok");

        // The live spec is the committed one.
        let committed: serde_json::Value = serde_yaml::from_str(
            &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi.yaml")).unwrap(),
        )
        .unwrap();
        let json: serde_json::Value = server.raw(&client, reqwest::Method::GET, "/openapi.json")
            .send().await.unwrap().json().await.unwrap();
        assert_eq!(json, committed);
        let yaml = server.raw(&client, reqwest::Method::GET, "/openapi.yaml").send().await.unwrap();
        assert_eq!(yaml.headers()["content-type"], "application/yaml");
        let yaml: serde_json::Value = serde_yaml::from_str(&yaml.text().await.unwrap()).unwrap();
        assert_eq!(yaml, committed);

        let ui = server.raw(&client, reqwest::Method::GET, "/docs/").send().await.unwrap();
        assert_eq!(ui.status().as_u16(), 200);
        assert!(ui.text().await.unwrap().contains("swagger-ui"));
        let init = server.raw(&client, reqwest::Method::GET, "/docs/swagger-initializer.js")
            .send().await.unwrap().text().await.unwrap();
        assert!(init.contains("/openapi.json"), "Swagger UI loads the live spec");
        let redirect = server.raw(&client, reqwest::Method::GET, "/docs").send().await.unwrap();
        assert_eq!(redirect.status().as_u16(), 200, "followed /docs -> /docs/");
        server.stop().await;
    }

    async fn readiness_fails_when_the_database_is_gone(backend) {
        let server = TestServer::start(backend).await;
        server.anonymous().health_ready().send().await.expect("ready");
        server.state().db.close_by_ref().await.unwrap();
        let (status, body) = expect_error(server.anonymous().health_ready().send().await);
        assert_eq!((status, body.error.as_str()), (503, "database_unavailable"));
        // Liveness does not depend on the database.
        server.anonymous().health_live().send().await.expect("still live");
    }
}
