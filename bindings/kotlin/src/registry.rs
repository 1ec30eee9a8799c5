//! [`Registry`]: native objects reachable from the JNI fast path ([`crate::fast_path`]) by a
//! number, without a uniffi handle.
//!
//! A uniffi object registers itself when Kotlin first asks for its id and leaves the registry
//! when it is dropped. The registry holds it weakly, so it never keeps an object alive: a call
//! with the id of an object already dropped finds nothing and fails cleanly.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};

/// Objects of one type by id.
pub(crate) struct Registry<T> {
    next: AtomicU64,
    entries: RwLock<HashMap<u64, Weak<T>>>,
}

impl<T> Registry<T> {
    /// An empty registry (ids start at 1; 0 is never given out).
    pub(crate) fn new() -> Self {
        Registry { next: AtomicU64::new(1), entries: RwLock::new(HashMap::new()) }
    }

    /// Registers `object` under a new id.
    pub(crate) fn insert(&self, object: &Arc<T>) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.entries.write().unwrap_or_else(|e| e.into_inner()).insert(id, Arc::downgrade(object));
        id
    }

    /// The object registered under `id`, if it is still alive.
    pub(crate) fn get(&self, id: u64) -> Option<Arc<T>> {
        self.entries.read().unwrap_or_else(|e| e.into_inner()).get(&id).and_then(Weak::upgrade)
    }

    /// Forgets `id` (the object is being dropped).
    pub(crate) fn remove(&self, id: u64) {
        self.entries.write().unwrap_or_else(|e| e.into_inner()).remove(&id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_objects_weakly_by_id() {
        let registry = Registry::new();
        let object = Arc::new(7);
        let id = registry.insert(&object);
        assert_ne!(id, 0);
        assert_eq!(registry.get(id).as_deref(), Some(&7));
        assert_ne!(registry.insert(&object), id);
        drop(object);
        assert!(registry.get(id).is_none());
        registry.remove(id);
        assert!(registry.get(id).is_none());
    }
}
