//! MCP end to end: `loopctl mcp` children and the server's `/mcp` endpoint, driven by real
//! MCP clients (rmcp's, and the official TypeScript SDK's when Node is present) against a
//! real `loopctl serve`.

mod bulk_refusals;
mod errors;
mod identity;
mod more_tools;
mod node_sdk;
mod payload_path;
mod results;
mod seed_loop;
mod skills;
mod support;
mod tiers;
mod tool_snapshots;
