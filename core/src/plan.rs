//! What a decision hands back: a [`Plan`], the outcome to answer with and every store
//! operation that must be written, atomically, before that answer is true: the records a
//! flow makes, the single-use values it spends, and the revocations it calls for.
//!
//! `identity-shared`'s executor (`Store::run`) loads the facts, calls the decision with them
//! and `now`, writes the plan's operations in one conditional write, and on a conflict
//! (someone changed what was loaded) loads and decides again. A decision never writes and
//! never reads; a plan with no operations is an answer from the facts alone.

use crate::store::Op;

/// The outcome of a decision and the operations that make it so.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Plan<T> {
    pub outcome: T,
    /// Written together or not at all; empty when the outcome changes nothing.
    pub ops: Vec<Op>,
}

impl<T> Plan<T> {
    /// An outcome that writes nothing.
    pub fn answer(outcome: T) -> Self {
        Self {
            outcome,
            ops: Vec::new(),
        }
    }

    /// An outcome that holds once `ops` are written.
    pub fn write(ops: Vec<Op>, outcome: T) -> Self {
        Self { outcome, ops }
    }

    /// The same writes with the outcome mapped.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Plan<U> {
        Plan {
            outcome: f(self.outcome),
            ops: self.ops,
        }
    }

    /// Adds operations to the same write.
    pub fn with(mut self, ops: impl IntoIterator<Item = Op>) -> Self {
        self.ops.extend(ops);
        self
    }
}
