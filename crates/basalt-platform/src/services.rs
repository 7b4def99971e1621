//! A registry through which modules offer services to each other (the
//! identity module's authenticator to the blog, say) without reaching into
//! each other's tables. Every request carries the registered services in its
//! extensions, so an extractor in any module can find them.

use std::sync::{Arc, RwLock};

use axum::http::Extensions;

/// Services offered by modules, by type.
#[derive(Debug, Clone, Default)]
pub struct Services(Arc<RwLock<Extensions>>);

impl Services {
    /// Offers `service` to other modules (and to every request).
    pub fn provide<T: Clone + Send + Sync + 'static>(&self, service: T) {
        if let Ok(mut map) = self.0.write() {
            map.insert(service);
        }
    }

    /// A service another module offered, if any.
    pub fn get<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.0.read().ok().and_then(|map| map.get::<T>().cloned())
    }

    /// A copy of everything offered, to attach to requests.
    pub fn snapshot(&self) -> Extensions {
        self.0.read().map(|map| map.clone()).unwrap_or_default()
    }
}
