//! The one executor of plans: load the facts, decide (pure, `identity_core`), write the
//! plan's operations in one conditional write. A conflict means something loaded changed
//! before the write: the facts are loaded again and the decision made again, after a short
//! jittered pause, at most [`PLAN_ATTEMPTS`] times. No flow has a retry loop of its own.

use std::future::Future;
use std::time::Duration;

use identity_core::plan::Plan;

use super::{Store, StoreError};

/// Loads and decisions per plan, at most: concurrent writers of one record lose to the
/// winner with a conflict and, loading again, see what it wrote; a few more cover
/// DynamoDB's transaction conflicts.
pub const PLAN_ATTEMPTS: u32 = 8;

/// The most operations one atomic write holds (DynamoDB's TransactWriteItems limit).
pub const MAX_OPS: usize = 100;

/// The longest pause before a reload; the pauses of one plan add up to at most
/// [`worst_pause`], well inside one store operation's budget (`aws::OPERATION_TIMEOUT`).
const MAX_PAUSE: Duration = Duration::from_millis(80);
const FIRST_PAUSE: Duration = Duration::from_millis(5);

/// The pause after the `attempt`-th conflict (0-based): uniform in [0, min(cap, 5 ms·2ⁿ)].
fn pause(attempt: u32) -> Duration {
    let ceiling = FIRST_PAUSE
        .saturating_mul(1 << attempt.min(16))
        .min(MAX_PAUSE);
    let millis = u32::try_from(ceiling.as_millis()).unwrap_or(u32::MAX);
    Duration::from_millis(u64::from(crate::crypto::random_below(millis + 1)))
}

/// The most one plan can pause in all.
pub fn worst_pause() -> Duration {
    (0..PLAN_ATTEMPTS - 1)
        .map(|n| FIRST_PAUSE.saturating_mul(1 << n.min(16)).min(MAX_PAUSE))
        .sum()
}

/// A write's [`StoreError::Conflict`] as `refusal` (what the conflict means to the caller:
/// a taken name, a record gone); any other failure as it is.
pub fn conflict_as<E: From<StoreError>>(refusal: E) -> impl FnOnce(StoreError) -> E {
    move |e| match e {
        StoreError::Conflict => refusal,
        e => e.into(),
    }
}

/// Which load of a plan this is: a loader may leave out facts that the write's conditions
/// judge on the first try (a replay record, a used `jti`) and read them after a conflict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Load {
    First,
    AfterConflict,
}

impl Store {
    /// Writes a plan decided on what the caller already holds (nothing to load again): the
    /// outcome, or the write's [`StoreError::Conflict`] for the caller to name.
    pub async fn apply<T>(&self, plan: Plan<T>) -> Result<T, StoreError> {
        let Plan { outcome, ops } = plan;
        if ops.len() > MAX_OPS {
            // Fail closed, the same on both backends: nothing is written.
            return Err(StoreError::Unavailable(format!(
                "a plan of {} writes is more than one atomic write holds ({MAX_OPS})",
                ops.len()
            )));
        }
        if !ops.is_empty() {
            self.write(ops).await?;
        }
        Ok(outcome)
    }

    /// [`Store::apply`], with a conflict answered as `None`: the write's conditions did not
    /// hold (a member who was not one, a record already gone), and nothing was written.
    pub async fn try_apply<T>(&self, plan: Plan<T>) -> Result<Option<T>, StoreError> {
        match self.apply(plan).await {
            Ok(outcome) => Ok(Some(outcome)),
            Err(StoreError::Conflict) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Runs a flow: `load` reads its facts (told whether it follows a conflict), `decide` (given them and `now`) returns the plan,
    /// and the plan's operations are written atomically. On [`StoreError::Conflict`] the
    /// facts are loaded and the decision made again; after [`PLAN_ATTEMPTS`] the conflict
    /// is the answer (fail closed: nothing was written).
    pub async fn run<F, T, L, Fut, D>(&self, load: L, decide: D) -> Result<T, StoreError>
    where
        L: Fn(Load) -> Fut,
        Fut: Future<Output = Result<F, StoreError>>,
        D: Fn(F, i64) -> Result<Plan<T>, StoreError>,
    {
        for attempt in 0..PLAN_ATTEMPTS {
            let facts = load(if attempt == 0 {
                Load::First
            } else {
                Load::AfterConflict
            })
            .await?;
            let plan = decide(facts, self.now())?;
            match self.apply(plan).await {
                Ok(outcome) => return Ok(outcome),
                Err(StoreError::Conflict) if attempt + 1 < PLAN_ATTEMPTS => {
                    tokio::time::sleep(pause(attempt)).await;
                }
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Conflict)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_grow_to_a_cap_and_stay_inside_one_operations_budget() {
        for attempt in 0..PLAN_ATTEMPTS {
            assert!(pause(attempt) <= MAX_PAUSE);
        }
        assert!(pause(0) <= FIRST_PAUSE);
        assert!(worst_pause() < crate::aws::OPERATION_TIMEOUT);
    }
}
