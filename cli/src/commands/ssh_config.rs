//! `ssh-config`: asks the gateway who the caller is, where its SSH listener is, which grants
//! reach the caller and which targets exist, then prints [`crate::ssh_config::render`]'s text
//! (or the plan as JSON).

use sallyport_core::api::{GatewayView, GrantView, TargetView, WhoAmI};
use sallyport_core::time::Timestamp;

use super::Ctx;
use crate::args::SshConfigArgs;
use crate::client::Reply;
use crate::error::CliError;
use crate::output::{decode, Format};
use crate::ssh_config::{render, Inputs, Plan, PlanError};

pub(super) async fn run(ctx: &Ctx, args: SshConfigArgs) -> Result<(), CliError> {
    // The caller first: the grants asked for are theirs (`?user=` also narrows an admin's view).
    let who = ctx.api.get(&["whoami"], &[]).await?;
    let who: WhoAmI = decode(&who.url, who.body)?;
    let user_query = [("user", who.user.to_string())];
    let (gateway, grants, targets) = tokio::try_join!(
        gateway_info(ctx),
        ctx.api.get(&["grants"], &user_query),
        ctx.api.get(&["targets"], &[]),
    )?;
    let (gateway_url, gateway) = gateway;
    let grants: Vec<GrantView> = decode(&grants.url, grants.body)?;
    let targets: Vec<TargetView> = decode(&targets.url, targets.body)?;

    let api = ctx.api.base();
    let plan = Plan::build(Inputs {
        alias: &args.gateway_alias,
        caller: &who.user,
        gateway: &gateway,
        api_host: api.host_str(),
        grants: &grants,
        targets: &targets,
        login: args.user.as_ref(),
        identity_file: args.identity_file.as_deref(),
    })
    .map_err(|e| plan_error(&gateway_url, e))?;
    match ctx.out.format() {
        Format::Json => {
            let value = serde_json::to_value(&plan).map_err(|e| CliError::Output(e.into()))?;
            ctx.out.json(&value)
        }
        Format::Table => ctx.out.text(&render(&plan, Timestamp::now(), api.as_str())),
    }
}

/// `GET /v1/gateway`, with a clearer message from a gateway that does not serve it.
async fn gateway_info(ctx: &Ctx) -> Result<(String, GatewayView), CliError> {
    let reply: Reply = match ctx.api.get(&["gateway"], &[]).await {
        Ok(reply) => reply,
        Err(CliError::Api {
            status: 404, code, ..
        }) => {
            return Err(CliError::Api {
                status: 404,
                code,
                message: "this gateway does not describe its SSH listener (GET /v1/gateway); \
                          it may be older than sallyport ssh-config"
                    .to_owned(),
            })
        }
        Err(e) => return Err(e),
    };
    let info = decode(&reply.url, reply.body)?;
    Ok((reply.url, info))
}

/// Problems with the gateway's answer are the gateway's (exit 7); the alias is the caller's
/// (exit 2).
fn plan_error(gateway_url: &str, e: PlanError) -> CliError {
    match e {
        PlanError::AliasCollision(_) => CliError::Config(
            "a granted target has the gateway alias as its name; choose another with --gateway-alias",
        ),
        PlanError::Address(_)
        | PlanError::NoHost
        | PlanError::HostKey(_)
        | PlanError::FingerprintMismatch { .. } => CliError::BadResponse {
            url: gateway_url.to_owned(),
            why: e.to_string(),
        },
    }
}
