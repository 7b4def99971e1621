//! GraphQL: the in-browser IDE (the endpoint itself is wired elsewhere).

pub mod graphiql;
