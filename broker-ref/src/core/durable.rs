//! Hooks for the persistent store (filled in with persistence).

use super::Core;

impl Core {
    /// The retained message of `topic` changed.
    pub(super) fn retained_changed(&mut self, _topic: &str) {}
}
