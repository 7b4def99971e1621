//! The Basalt binary's library half: the CLI and the list of modules
//! compiled into this build. Integration tests start the same assembly.

pub mod cli;
pub mod graphql;

use basalt_platform::Module;

/// Every domain module of this build, in start-up order.
pub fn modules() -> Vec<Box<dyn Module>> {
    vec![
        Box::new(basalt_identity::IdentityModule),
        Box::new(basalt_blog::BlogModule),
        Box::new(basalt_chat::ChatModule),
        Box::new(basalt_shop::ShopModule),
        Box::new(graphql::GraphQlModule),
    ]
}
