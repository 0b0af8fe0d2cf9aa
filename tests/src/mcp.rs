//! MCP clients for the suite: the official SDK's client over Streamable HTTP.

use rmcp::{
    model::{
        CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, Implementation,
        ProtocolVersion,
    },
    service::RunningService,
    transport::{
        streamable_http_client::StreamableHttpClientTransportConfig, StreamableHttpClientTransport,
    },
    ClientLifecycleMode, ClientServiceExt, RoleClient, ServiceExt,
};

use crate::{remember_secret, TestServer};

pub type McpClient = RunningService<RoleClient, ClientConfig>;

fn transport(server: &TestServer, bearer: &str) -> StreamableHttpClientTransport<reqwest::Client> {
    transport_at(&server.url, bearer)
}

fn transport_at(base: &str, bearer: &str) -> StreamableHttpClientTransport<reqwest::Client> {
    remember_secret(bearer);
    let cfg = StreamableHttpClientTransportConfig::with_uri(format!("{base}/mcp"))
        .auth_header(bearer.to_owned());
    let http = mcpgate_client::http_client_builder()
        .build()
        .expect("http client");
    StreamableHttpClientTransport::with_client(http, cfg)
}

impl TestServer {
    /// An MCP session (initialize handshake) authenticated with `bearer`.
    pub async fn mcp(&self, bearer: &str) -> McpClient {
        self.mcp_with(bearer, ProtocolVersion::V_2025_11_25)
            .await
            .expect("mcp handshake")
    }

    /// An MCP session asking for protocol `version` in `initialize`.
    pub async fn mcp_with(
        &self,
        bearer: &str,
        version: ProtocolVersion,
    ) -> Result<McpClient, String> {
        let mut config = ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("mcpgate-e2e", "0"),
        );
        config.protocol_version = version;
        config
            .serve(transport(self, bearer))
            .await
            .map_err(|e| e.to_string())
    }

    /// An MCP session on the 2026-07-28 revision (no initialize; discovery).
    pub async fn mcp_stateless(&self, bearer: &str) -> McpClient {
        let config = ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("mcpgate-e2e", "0"),
        );
        config
            .serve_with_lifecycle(
                transport(self, bearer),
                ClientLifecycleMode::Discover {
                    preferred_versions: vec![ProtocolVersion::V_2026_07_28],
                },
            )
            .await
            .expect("mcp discovery")
    }
}

/// An MCP session with the server at `base` (a proxy in front of one).
pub async fn mcp_at(base: &str, bearer: &str) -> Result<McpClient, String> {
    ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("mcpgate-e2e", "0"),
    )
    .serve(transport_at(base, bearer))
    .await
    .map_err(|e| e.to_string())
}

/// Call `tool` with JSON `args`.
pub async fn call(
    client: &McpClient,
    tool: &'static str,
    args: serde_json::Value,
) -> CallToolResult {
    let args = args.as_object().cloned().unwrap_or_default();
    client
        .call_tool(CallToolRequestParams::new(tool).with_arguments(args))
        .await
        .expect("tools/call answered")
}

/// The names of the tools the session sees.
pub async fn tool_names(client: &McpClient) -> Vec<String> {
    let mut names: Vec<String> = client
        .list_all_tools()
        .await
        .expect("tools/list")
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    names.sort();
    names
}
