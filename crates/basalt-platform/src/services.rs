//! A registry through which modules offer services to each other (the
//! identity module's authenticator to the blog, say) without reaching into
//! each other's tables. Every request carries the registered services in its
//! extensions, so an extractor in any module can find them.
//!
//! The registry follows the module phases (see [`crate::module::Module`]):
//! while modules *provide*, services can be offered but not looked up (so
//! no module can depend on the order of the module list); once every module
//! has provided, the registry is sealed: services can be looked up, and no
//! longer offered.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, RwLock};

use axum::http::Extensions;

/// Services offered by modules, by type.
#[derive(Debug, Clone, Default)]
pub struct Services(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    map: RwLock<Extensions>,
    /// 0 (the default): offer and look up, for a registry used outside
    /// [`crate::App::build`]; then [`PROVIDING`], then [`SEALED`].
    phase: AtomicU8,
}

/// Modules are providing: offer only.
const PROVIDING: u8 = 1;
/// Every module has provided: look up only.
const SEALED: u8 = 2;

impl Services {
    /// Offers `service` to other modules (and to every request). Modules
    /// offer theirs through [`crate::module::Provide::service`]; once the
    /// provide phase is over, an offer is refused (and logged).
    pub fn provide<T: Clone + Send + Sync + 'static>(&self, service: T) {
        self.offer(service);
    }

    pub(crate) fn offer<T: Clone + Send + Sync + 'static>(&self, service: T) {
        if self.0.phase.load(Ordering::Acquire) == SEALED {
            tracing::error!(
                service = std::any::type_name::<T>(),
                "a service was offered after the provide phase; offer it in `Module::provide`"
            );
            return;
        }
        if let Ok(mut map) = self.0.map.write() {
            map.insert(service);
        }
    }

    /// A service another module offered, if any. Finds nothing during the
    /// provide phase.
    pub fn get<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        if self.0.phase.load(Ordering::Acquire) == PROVIDING {
            tracing::error!(
                service = std::any::type_name::<T>(),
                "a service was looked up during the provide phase; look it up in `Module::wire`"
            );
            return None;
        }
        self.0
            .map
            .read()
            .ok()
            .and_then(|map| map.get::<T>().cloned())
    }

    /// A service another module offered, or an error naming its type (the
    /// module that offers it is missing from the build).
    pub fn require<T: Clone + Send + Sync + 'static>(&self) -> anyhow::Result<T> {
        self.get::<T>().ok_or_else(|| {
            anyhow::anyhow!(
                "no module provides `{}` (is the module that offers it in the module list?)",
                std::any::type_name::<T>()
            )
        })
    }

    /// A copy of everything offered, to attach to requests.
    pub fn snapshot(&self) -> Extensions {
        self.0.map.read().map(|map| map.clone()).unwrap_or_default()
    }

    /// The provide phase begins: offers only.
    /// Offers a service built during wiring ([`crate::module::Wiring::offer`]),
    /// once every module is wired.
    pub(crate) fn offer_after_wiring<T: Clone + Send + Sync + 'static>(&self, service: T) {
        if let Ok(mut map) = self.0.map.write() {
            map.insert(service);
        }
    }

    pub(crate) fn begin_providing(&self) {
        self.0.phase.store(PROVIDING, Ordering::Release);
    }

    /// The provide phase is over: look-ups only.
    pub(crate) fn seal(&self) {
        self.0.phase.store(SEALED, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_are_offered_while_providing_and_found_once_sealed() {
        let services = Services::default();
        services.begin_providing();
        services.provide(7_u32);
        assert_eq!(services.get::<u32>(), None, "not during the provide phase");
        services.seal();
        assert_eq!(services.get::<u32>(), Some(7));
        services.provide(8_u32);
        assert_eq!(services.get::<u32>(), Some(7), "no offers once sealed");
        let missing = services.require::<String>().expect_err("nobody offers it");
        assert!(missing.to_string().contains("String"), "{missing}");
    }
}
