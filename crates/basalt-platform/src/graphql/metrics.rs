//! `basalt_graphql_operations_total{operation, outcome}`: what the endpoint
//! ran. The request metrics see one route, `/graphql`, whatever it runs;
//! this tells queries from mutations and failures from successes.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// Labels of the operations counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    /// `query`, `mutation`, `subscription`, or `unknown` (did not parse).
    pub operation: &'static str,
    /// `ok`; `error` (ran, with errors in the answer); `refused` (did not
    /// run: malformed, over a limit, or refused credentials).
    pub outcome: &'static str,
}

/// The endpoint's metrics.
#[derive(Clone, Debug, Default)]
pub struct GraphQlMetrics {
    operations: Family<OperationLabels, Counter>,
}

impl GraphQlMetrics {
    /// The metrics, registered in `registry`.
    pub fn registered(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "graphql_operations",
            "GraphQL operations by type and outcome",
            metrics.operations.clone(),
        );
        metrics
    }

    /// Counts one operation.
    pub fn count(&self, operation: &'static str, outcome: &'static str) {
        self.operations
            .get_or_create(&OperationLabels { operation, outcome })
            .inc();
    }
}
