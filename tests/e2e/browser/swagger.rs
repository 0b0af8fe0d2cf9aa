//! Swagger UI at `/docs` in a real browser: "Authorize" with an API key and
//! with OAuth (the PKCE popup through the login and consent pages), each
//! followed by "Try it out" on `GET /api/v1/users/me` answering 200.

use fantoccini::{elements::Element, Locator};

use super::*;

/// The `//div` of the Authorize dialog for the scheme named `scheme`.
fn scheme_box(scheme: &str) -> String {
    format!(
        "//div[contains(@class,'auth-container')][.//h4[contains(normalize-space(.), '{scheme}')]]"
    )
}

async fn xpath(b: &Browser, path: &str) -> Element {
    match b
        .client()
        .wait()
        .at_most(mcpgate_e2e::browser::WAIT)
        .for_element(Locator::XPath(path))
        .await
    {
        Ok(e) => e,
        Err(e) => panic!("no element `{path}` on {}: {e}", b.current_url().await),
    }
}

async fn click_xpath(b: &Browser, path: &str) {
    xpath(b, path)
        .await
        .click()
        .await
        .unwrap_or_else(|e| panic!("click `{path}`: {e}"));
}

/// Open the docs and the Authorize dialog.
async fn open_authorize(b: &Browser, server: &TestServer) {
    b.goto(&format!("{}/docs/", server.url)).await;
    b.click(".auth-wrapper .authorize").await;
    b.wait_for(".modal-ux").await;
}

/// Close the dialog, then "Try it out" and "Execute" on `user_me`; the
/// status the live response shows.
async fn try_user_me(b: &Browser) -> String {
    b.click(".modal-ux .close-modal").await;
    b.click("#operations-Users-user_me .opblock-summary").await;
    // The docs open with "Try it out" switched on (`tryItOutEnabled`); its
    // button then reads "Cancel" and Execute is already there.
    b.wait_for("#operations-Users-user_me .try-out__btn").await;
    if !b.exists("#operations-Users-user_me .execute").await {
        b.click("#operations-Users-user_me .try-out__btn").await;
    }
    b.click("#operations-Users-user_me .execute").await;
    b.text("#operations-Users-user_me .live-responses-table .response .response-col_status")
        .await
        .trim()
        .to_owned()
}

browser_e2e! {
    async fn swagger_ui_authorizes_with_an_api_key(backend, b) {
        let server = TestServer::start(backend).await;
        let user = server.register_with_password().await;
        open_authorize(&b, &server).await;
        let input = xpath(&b, &format!("{}//input", scheme_box("ApiKey"))).await;
        input.send_keys(&user.api_key).await.expect("type the key");
        click_xpath(&b, &format!("{}//button[normalize-space(.)='Authorize']", scheme_box("ApiKey"))).await;
        xpath(&b, &format!("{}//button[normalize-space(.)='Logout']", scheme_box("ApiKey"))).await;
        assert_eq!(try_user_me(&b).await, "200");
        b.assert_console_clean("Swagger UI").await;
        server.stop().await;
    }

    async fn swagger_ui_authorizes_with_oauth_in_a_popup(backend, b) {
        let server = TestServer::start(backend).await;
        let user = server.register_with_password().await;
        open_authorize(&b, &server).await;
        let oauth = scheme_box("OAuth");
        // Only the read scopes are ticked.
        let ticked = b
            .client()
            .execute(
                "return Array.from(document.querySelectorAll('.modal-ux input[type=checkbox]:checked')).map(c => c.id)",
                vec![],
            )
            .await
            .expect("read the ticked scopes");
        let ticked = ticked.to_string();
        for scope in ["memories:read", "connections:read", "keys:read"] {
            assert!(ticked.contains(scope), "{scope} is ticked: {ticked}");
        }
        for scope in ["memories:write", "keys:write"] {
            assert!(!ticked.contains(scope), "{scope} is not ticked: {ticked}");
        }
        let docs = b.window().await;
        click_xpath(&b, &format!("{oauth}//button[normalize-space(.)='Authorize']")).await;

        // The popup: login, then consent.
        b.wait_for_new_window(std::slice::from_ref(&docs)).await;
        b.wait_for("#password").await;
        sign_in(&b, &user).await;
        b.click("button[value=approve]").await;
        // The popup hands the code back and closes itself.
        let deadline = tokio::time::Instant::now() + mcpgate_e2e::browser::WAIT;
        while b.windows().await.len() > 1 {
            assert!(tokio::time::Instant::now() < deadline, "the popup did not close");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        b.switch_to(&docs).await;
        xpath(&b, &format!("{oauth}//button[normalize-space(.)='Logout']")).await;
        assert_eq!(try_user_me(&b).await, "200");
        b.assert_console_clean("Swagger UI after OAuth").await;
        server.stop().await;
    }
}
