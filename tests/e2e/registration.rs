//! Registration and `GET /api/v1/users/me`.

use super::*;

e2e! {
    async fn register_returns_the_key_once_and_me_describes_the_caller(backend) {
        let server = TestServer::start(backend).await;
        let created = server
            .anonymous()
            .user_register()
            .body(types::RegisterRequest {
                name: Some("Ada Lovelace".into()),
                email: Some("  Ada@Example.COM ".into()),
                password: Some("correct horse battery".into()),
            })
            .send()
            .await
            .expect("register");
        assert_eq!(created.status().as_u16(), 201);
        assert_eq!(created.headers()["cache-control"], "no-store", "a response with a secret is never cached");
        assert_eq!(created.headers()["x-content-type-options"], "nosniff");
        let reg = created.into_inner();
        assert!(reg.api_key.starts_with(&format!("mcpg_{}_", reg.key_id)));
        assert_eq!(reg.api_key.len(), 71);
        assert_eq!(reg.scopes.len(), 7, "the first key holds every scope");

        for client in [
            server.with_key(&reg.api_key),
            // The same key through the X-API-Key header.
            {
                let mut headers = reqwest::header::HeaderMap::new();
                headers.insert("x-api-key", reg.api_key.parse().unwrap());
                let http = mcpgate_client::http_client_builder().default_headers(headers).build().unwrap();
                mcpgate_client::Client::new_with_client(&server.url, http, Default::default())
            },
        ] {
            let me = client.user_me().send().await.expect("me").into_inner();
            assert_eq!(me.user_id, reg.user_id);
            assert_eq!(me.name.as_deref(), Some("Ada Lovelace"));
            assert_eq!(me.email.as_deref(), Some("ada@example.com"));
            assert_eq!(me.credential.kind, "api_key");
            assert_eq!(me.credential.id, reg.key_id);
            assert_eq!(me.credential.scopes, reg.scopes);
        }

        // The password is stored as a bcrypt hash of cost 12, never as given.
        let user = mcpgate_server::store::users::find(&server.state().db, reg.user_id.parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        let hash = user.password_hash.expect("hash stored");
        assert!(hash.starts_with("$2b$12$"), "{hash}");
        assert!(bcrypt::verify("correct horse battery", &hash).unwrap());
        server.stop().await;
    }

    async fn an_email_can_register_only_once(backend) {
        let server = TestServer::start(backend).await;
        let anon = server.anonymous();
        let register = |email: &str| {
            anon.user_register().body(types::RegisterRequest {
                name: None,
                email: Some(email.into()),
                password: None,
            })
        };
        register("grace@example.com").send().await.expect("first");
        let (status, body) = expect_error(register("GRACE@example.com").send().await);
        assert_eq!(status, 409);
        assert_eq!(body.error, "email_taken");
        // Accounts without an email are fine, any number of them.
        for _ in 0..2 {
            server
                .anonymous()
                .user_register()
                .body(types::RegisterRequest { name: None, email: None, password: None })
                .send()
                .await
                .expect("anonymous account");
        }
        server.stop().await;
    }

    async fn closed_registration_answers_403(backend) {
        let server = TestServer::start_with(backend, |c| {
            c.registration = mcpgate_server::config::RegistrationPolicy::Closed;
        })
        .await;
        let (status, body) = expect_error(
            server
                .anonymous()
                .user_register()
                .body(types::RegisterRequest { name: None, email: None, password: None })
                .send()
                .await,
        );
        assert_eq!(status, 403);
        assert_eq!(body.error, "registration_closed");
        server.stop().await;
    }

    async fn invalid_registration_fields_are_named(backend) {
        let server = TestServer::start(backend).await;
        // (name, email, password, field at fault)
        type Case<'a> = (Option<&'a str>, Option<&'a str>, Option<&'a str>, &'a str);
        let cases: &[Case] = &[
            (None, Some("not-an-email"), None, "email"),
            (None, Some("a@b.co"), Some("short"), "password"),
            (None, None, Some("long enough password"), "password"),
            (None, Some("a@b.co"), Some(&"x".repeat(73)), "password"),
            (Some(&"n".repeat(101)), None, None, "name"),
            (Some("   "), None, None, "name"),
        ];
        for (name, email, password, field) in cases {
            let (status, body) = expect_error(
                server
                    .anonymous()
                    .user_register()
                    .body(types::RegisterRequest {
                        name: name.map(Into::into),
                        email: email.map(Into::into),
                        password: password.map(Into::into),
                    })
                    .send()
                    .await,
            );
            assert_eq!(status, 400, "{field}");
            assert_eq!(body.error, "validation_failed");
            assert_eq!(body.field.as_deref(), Some(*field), "{body:?}");
        }
        // Nothing was half-written: no user exists.
        use sea_orm::{EntityTrait, PaginatorTrait};
        let users = mcpgate_server::entity::user::Entity::find().count(&server.state().db).await.unwrap();
        assert_eq!(users, 0);
        server.stop().await;
    }
}
